/**
 * One simulate() run in a fresh process, for the simulation benchmark: memory and CPU time are
 * then this run's alone, not whatever earlier benchmarks left in the parent's heap. Receives
 * the options over IPC, streams progress lines back, and ends with its measurements.
 */
import { simulate, type SimulationOptions, type SimulationResult } from '../simulations/simulate.js';

export type SimulationChildEvent =
  | { type: 'ready' }
  | { type: 'line'; text: string }
  | { type: 'done'; result: SimulationResult; seconds: number; baseRss: number; peakRss: number; coresUsed: number }
  | { type: 'error'; message: string };

const send = (event: SimulationChildEvent) => process.send?.(event);

process.once('message', (options: SimulationOptions) => {
  void (async () => {
    const baseRss = process.memoryUsage.rss();
    let peakRss = baseRss;
    const timer = setInterval(() => {
      peakRss = Math.max(peakRss, process.memoryUsage.rss());
    }, 100);
    const cpu = process.cpuUsage();
    const started = performance.now();
    try {
      const result = await simulate(options, { line: (text) => send({ type: 'line', text }) });
      const ms = performance.now() - started;
      const used = process.cpuUsage(cpu);
      peakRss = Math.max(peakRss, process.memoryUsage.rss());
      send({ type: 'done', result, seconds: ms / 1000, baseRss, peakRss, coresUsed: (used.user + used.system) / 1000 / ms });
    } catch (error) {
      send({ type: 'error', message: error instanceof Error ? error.message : String(error) });
    } finally {
      clearInterval(timer);
      process.disconnect?.();
    }
  })();
});
// Options are sent only after this: an IPC message that arrives before the listener is lost.
send({ type: 'ready' });
