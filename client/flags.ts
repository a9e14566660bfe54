/**
 * A command's numeric flag, as every codistill command reads one: absent → `fallback`; blank, not a
 * finite number, or outside `ok` → an error naming the flag, its rule and what was given.
 */
export function numberFlag(values: Readonly<Record<string, unknown>>, name: string, fallback: number, ok: (x: number) => boolean, rule: string): number {
  const raw = values[name] as string | undefined;
  if (raw === undefined) return fallback;
  const x = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(x) || !ok(x)) throw new Error(`--${name} must be ${rule}; got "${raw}"`);
  return x;
}
