/**
 * ONE (Lan, Zhu & Gong 2018): a multi-branch student with a gated on-the-fly ensemble teacher
 * (client/losses/one.ts), against one branch's network trained on labels alone.
 */
import { oneArchitecture, plainArchitecture } from '../../models.js';
import { CE_ONLY, type DistillRecipe } from '../runner.js';

export const one: DistillRecipe = {
  summary: 'Lan, Zhu & Gong 2018: multi-branch student with a gated on-the-fly ensemble teacher',
  defaults: { teacher: '', student: 'd64,d32', temperature: 3 },
  validate(options) {
    oneArchitecture(options.student, options.branches, options.sharedLayers, options.gate);
  },
  async run(runner, report) {
    const { options } = runner;
    const s = runner.seeds;
    if (options.baseline) {
      const baseline = runner.build(plainArchitecture(options.student), s.studentInit);
      report.baseline = await runner.trainModel('baseline: one branch on labels alone', baseline, [{ epochs: options.epochs, loss: CE_ONLY }], s.studentOrder);
    }
    const architecture = oneArchitecture(options.student, options.branches, options.sharedLayers, options.gate);
    const student = runner.build(architecture, s.studentInit);
    const loss = options.loss ?? [{ name: 'one', weight: 1, params: { temperature: options.temperature } }];
    report.student = await runner.trainModel('student: ONE', student, [{ epochs: options.epochs, loss }], s.studentOrder);
  },
};
