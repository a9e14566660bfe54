/**
 * The operators' dashboard: connects to the coordinator's /operator namespace with an observer
 * or admin token, and draws every session's status as the coordinator pushes it — phase,
 * participants (active, late, dropped), per-round accuracy and bytes, the config. Admins get
 * start, pause, resume and stop; the coordinator checks the role on every action regardless.
 */
import { io, type Socket } from 'socket.io-client';
import { decodeMessage, encodeMessage, PROTOCOL_VERSION, readReply, replyMessages } from '../../protocol/index.js';
import {
  OPERATOR_NAMESPACE,
  operatorClientMessages,
  operatorServerMessages,
  SESSION_ACTIONS,
  type OperatorServerMessage,
  type OperatorToServerEvents,
  type ServerToOperatorEvents,
  type SessionAction,
  type SessionStatus,
} from '../../protocol/operator.js';

type Status = OperatorServerMessage<'status'>;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const sessionsBox = $<HTMLDivElement>('sessions');
const errorBox = $<HTMLDivElement>('error');
let socket: Socket<ServerToOperatorEvents, OperatorToServerEvents> | undefined;
let latest: Status | undefined;

const PALETTE = ['#2d6cdf', '#d9822b', '#1e9e5a', '#b83b5e', '#7a4fd6', '#0f9bb0', '#8d6e2f', '#5b6573'];

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;

function showError(message: string | undefined): void {
  errorBox.textContent = message ?? '';
  errorBox.classList.toggle('shown', message !== undefined);
}

/** Mean of the reported accuracies of a round, or undefined when nobody reported one. */
function meanAccuracy(r: SessionStatus['history'][number]): number | undefined {
  const values = Object.values(r.accuracy);
  return values.length === 0 ? undefined : values.reduce((a, b) => a + b, 0) / values.length;
}

interface Series {
  name: string;
  color: string;
  points: Array<[number, number]>;
  dashed?: boolean;
}

/** A line chart over rounds 1…rounds as SVG text: one polyline (and dots) per series, and a legend. */
function lineChart(title: string, series: Series[], rounds: number, yMax: number, yLabel: (y: number) => string): string {
  const W = 520;
  const H = 220;
  const L = 56;
  const R = 12;
  const T = 44;
  const B = 30;
  const x = (round: number) => L + ((round - 1) / Math.max(1, rounds - 1)) * (W - L - R);
  const y = (value: number) => T + (1 - value / yMax) * (H - T - B);
  const parts = [`<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${escape(title)}"><text x="${L}" y="16" font-size="13" font-weight="600" fill="#3b4552">${escape(title)}</text>`];
  for (let k = 0; k <= 4; k++) {
    const v = (yMax * k) / 4;
    parts.push(`<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" stroke="#e3e7ec"/><text x="${L - 6}" y="${y(v) + 4}" font-size="11" text-anchor="end" fill="#5b6573">${escape(yLabel(v))}</text>`);
  }
  const step = Math.max(1, Math.ceil(rounds / 10));
  for (let r = 1; r <= rounds; r += step) parts.push(`<text x="${x(r)}" y="${H - 12}" font-size="11" text-anchor="middle" fill="#5b6573">${r}</text>`);
  parts.push(`<text x="${W - R}" y="${H - 1}" font-size="10" text-anchor="end" fill="#7a828e">round</text>`);
  // The legend runs along one line between the title and the plot, each entry as wide as its name.
  let lx = L;
  for (const s of series) {
    parts.push(`<rect x="${lx}" y="30" width="12" height="3" fill="${s.color}"/><text x="${lx + 16}" y="35" font-size="11" fill="#3b4552">${escape(s.name)}</text>`);
    lx += 16 + 6.5 * s.name.length + 14;
  }
  for (const s of series) {
    if (s.points.length === 0) continue;
    const path = s.points.map(([r, v]) => `${x(r).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    parts.push(`<polyline points="${path}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed === true ? ' stroke-dasharray="5 4"' : ''}/>`);
    for (const [r, v] of s.points) parts.push(`<circle cx="${x(r).toFixed(1)}" cy="${y(v).toFixed(1)}" r="3" fill="${s.color}"/>`);
  }
  parts.push('</svg>');
  return parts.join('');
}

function accuracyChart(s: SessionStatus): string {
  const ids = s.participants.map((p) => p.id);
  const series: Series[] = ids.map((id, i) => ({
    name: id,
    color: PALETTE[i % PALETTE.length]!,
    points: s.history.flatMap((r): Array<[number, number]> => (r.accuracy[id] === undefined ? [] : [[r.round, r.accuracy[id]!]])),
  }));
  series.push({ name: 'mean', color: '#1d2430', dashed: true, points: s.history.flatMap((r): Array<[number, number]> => { const m = meanAccuracy(r); return m === undefined ? [] : [[r.round, m]]; }) });
  return lineChart('Reported validation accuracy', series, s.rounds, 1, (v) => `${Math.round(100 * v)}%`);
}

function bytesChart(s: SessionStatus): string {
  const most = Math.max(1024, ...s.history.flatMap((r) => [r.bytesUp, r.bytesDown]));
  const yMax = Math.ceil(most / 1024 / 4) * 4 * 1024;
  return lineChart('Bytes per round (all participants)', [
    { name: 'sent by participants', color: '#2d6cdf', points: s.history.map((r) => [r.round, r.bytesUp]) },
    { name: 'sent to participants', color: '#d9822b', points: s.history.map((r) => [r.round, r.bytesDown]) },
  ], s.rounds, yMax, (v) => `${Math.round(v / 1024)} KiB`);
}

/** A session's card: built once (so its buttons survive updates), its parts refreshed on every status. */
function card(id: string): HTMLElement {
  const existing = sessionsBox.querySelector<HTMLElement>(`[data-session="${CSS.escape(id)}"]`);
  if (existing !== null) return existing;
  const element = document.createElement('section');
  element.className = 'session';
  element.dataset.session = id;
  element.innerHTML = `<h2></h2>
    <div class="controls">${SESSION_ACTIONS.map((a) => `<button type="button" data-action="${a}"${a === 'stop' ? ' class="stop"' : ''}>${a}</button>`).join('')}<span class="result"></span></div>
    <div class="grid"><div class="plot accuracy"></div><div class="plot bytes"></div></div>
    <div class="grid"><div><h3>Participants</h3><table class="participants"></table></div><div><h3>Rounds</h3><table class="rounds"></table></div></div>
    <h3>Config</h3><table class="config"></table>`;
  for (const button of element.querySelectorAll<HTMLButtonElement>('button[data-action]')) {
    button.addEventListener('click', () => void control(id, button.dataset.action as SessionAction, element));
  }
  sessionsBox.append(element);
  return element;
}

async function control(session: string, action: SessionAction, element: HTMLElement): Promise<void> {
  const result = element.querySelector<HTMLSpanElement>('.result')!;
  if (socket === undefined) return;
  result.textContent = `${action}…`;
  try {
    const envelope = encodeMessage(operatorClientMessages.control, { v: PROTOCOL_VERSION, session, action });
    readReply(replyMessages.ack, await socket.timeout(10_000).emitWithAck('control', envelope));
    result.textContent = `${action}: done`;
  } catch (error) {
    result.textContent = `${action} refused: ${(error as Error).message}`;
  }
}

function render(status: Status): void {
  const admin = status.operator.role === 'admin';
  $('who').textContent = `${status.operator.id} (${status.operator.role}) · updated ${new Date(status.at).toLocaleTimeString()}`;
  if (status.sessions.length === 0) sessionsBox.innerHTML = '<p class="empty">No sessions on this coordinator yet.</p>';
  else sessionsBox.querySelector('.empty')?.remove();
  for (const s of status.sessions) {
    const element = card(s.id);
    element.dataset.phase = s.phase;
    element.dataset.round = String(s.round);
    element.dataset.completed = String(s.history.length);
    element.dataset.paused = String(s.paused);
    const phase = s.phase === 'ended' ? 'ended' : s.paused ? 'paused' : s.phase;
    element.querySelector('h2')!.innerHTML = `${escape(s.id)} <span class="phase ${escape(phase)}">${escape(phase)}</span>
      <small>${escape(s.algorithm)} · round ${s.round} of ${s.rounds} · ${s.history.length} completed${s.endReason === undefined ? '' : ` · ${escape(s.endReason)}`}</small>`;
    for (const button of element.querySelectorAll<HTMLButtonElement>('button[data-action]')) {
      const action = button.dataset.action as SessionAction;
      const possible = s.phase !== 'ended' && (action !== 'start' || s.phase === 'waiting') && (action !== 'pause' || !s.paused) && (action !== 'resume' || s.paused);
      button.disabled = !admin || !possible;
      button.title = admin ? '' : 'observers watch; this takes an admin token';
    }
    element.querySelector('.plot.accuracy')!.innerHTML = accuracyChart(s);
    element.querySelector('.plot.bytes')!.innerHTML = bytesChart(s);
    const last = s.history.at(-1);
    element.querySelector('.participants')!.innerHTML = '<tr><th>participant</th><th>role</th><th>state</th><th>last accuracy</th></tr>' +
      s.participants.map((p) => {
        const accuracy = last?.accuracy[p.id];
        return `<tr data-participant="${escape(p.id)}" data-state="${p.state}"><td>${escape(p.id)}</td><td>${escape(p.role ?? '–')}</td><td class="state ${p.state}">${p.state}</td><td>${accuracy === undefined ? '–' : `${(100 * accuracy).toFixed(1)}%`}</td></tr>`;
      }).join('');
    element.querySelector('.rounds')!.innerHTML = '<tr><th>round</th><th>contributors</th><th>mean accuracy</th><th>up</th><th>down</th><th>time</th></tr>' +
      (s.history.length === 0 ? '<tr><td colspan="6" class="empty">no round completed yet</td></tr>' : '') +
      s.history.map((r) => {
        const mean = meanAccuracy(r);
        return `<tr data-round="${r.round}"${mean === undefined ? '' : ` data-accuracy="${mean}"`}><td>${r.round}</td><td>${r.contributors} of ${r.participants}</td><td>${mean === undefined ? '–' : `${(100 * mean).toFixed(1)}%`}</td><td>${kib(r.bytesUp)}</td><td>${kib(r.bytesDown)}</td><td>${((r.closedAt - r.openedAt) / 1000).toFixed(1)} s</td></tr>${r.failure === undefined ? '' : `<tr><td colspan="6" class="state late">${escape(r.failure)}</td></tr>`}`;
      }).join('');
    element.querySelector('.config')!.innerHTML = Object.entries(s.config).map(([k, v]) => `<tr><td>${escape(k)}</td><td>${escape(String(v))}</td></tr>`).join('');
  }
}

function connect(token: string): void {
  socket?.close();
  showError(undefined);
  const next: Socket<ServerToOperatorEvents, OperatorToServerEvents> = io(`${location.origin}${OPERATOR_NAMESPACE}`, {
    transports: ['websocket'],
    auth: { v: PROTOCOL_VERSION, token },
    reconnectionAttempts: 20,
  });
  socket = next;
  next.on('status', (bytes) => {
    try {
      latest = decodeMessage(operatorServerMessages.status, bytes);
      document.body.dataset.connected = 'true';
      $('login').style.display = 'none';
      render(latest);
    } catch (error) {
      showError(`a status update could not be read: ${(error as Error).message}`);
    }
  });
  next.on('connect_error', (error) => {
    const code = (error as Error & { data?: { code?: string } }).data?.code;
    // A refused token will not get better by retrying.
    if (code !== undefined) {
      next.close();
      document.body.dataset.connected = 'false';
      $('login').style.display = '';
    }
    showError(code === undefined ? `cannot reach the coordinator: ${error.message}` : error.message);
  });
  next.on('disconnect', (reason) => {
    if (reason !== 'io client disconnect') showError(`disconnected from the coordinator (${reason}); reconnecting…`);
  });
  next.on('connect', () => showError(undefined));
}

$<HTMLFormElement>('login').addEventListener('submit', (event) => {
  event.preventDefault();
  connect($<HTMLInputElement>('token').value.trim());
});
document.body.dataset.connected = 'false';
