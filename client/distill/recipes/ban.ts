/**
 * Born-again networks (Furlanello et al. 2018): generation 0 on labels; generation k distilled
 * from generation k − 1, same architecture; each generation and the ensembles reported.
 * Generation 0 is the labels-only baseline, so there is no separate one.
 */
import { plainArchitecture, type FeatureModel } from '../../models.js';
import { CE_ONLY, kdLossConfig, type DistillRecipe, type EnsembleReport, type ModelReport } from '../runner.js';
import { averageProbs, countErrors, evaluateModel } from '../trainer.js';

export const ban: DistillRecipe = {
  summary: 'Furlanello et al. 2018: born-again generations of one architecture, and their ensembles',
  // Generation k − 1 teaches generation k: there is no separate teacher architecture.
  defaults: { teacher: '', student: 'd32', temperature: 1, alpha: 0 },
  validate(options) {
    plainArchitecture(options.student);
  },
  async run(runner, report) {
    const { options, test } = runner;
    const s = runner.seeds;
    const architecture = plainArchitecture(options.student);
    const generations: ModelReport[] = [];
    const probs: Float32Array[] = [];
    let previous: FeatureModel | undefined;
    for (let g = 0; g <= options.generations; g++) {
      const model = runner.build(architecture, s.studentInit + g);
      const loss = g === 0 ? CE_ONLY : (options.loss ?? kdLossConfig(options.temperature, options.alpha));
      const result = await runner.trainModel(g === 0 ? 'generation 0: on labels' : `generation ${g}: born again from generation ${g - 1}`, model, [{ epochs: options.epochs, loss }], s.studentOrder + g, previous);
      generations.push(result);
      probs.push((await evaluateModel(model, test)).probs);
      if (previous !== undefined) runner.release(previous);
      previous = model;
    }
    report.generations = generations;
    report.teacher = generations[0];
    report.student = generations[generations.length - 1]!;
    runner.student = previous;
    const ensemble = (from: number): EnsembleReport => {
      const members = probs.slice(from);
      const errors = countErrors(averageProbs(members), test.y, test.numClasses);
      return { members: generations.slice(from).map((_, i) => `generation ${from + i}`), errors, accuracy: 1 - errors / test.y.length };
    };
    // Furlanello et al.'s BAN ensemble averages the predictions of the generations; whether
    // the label-trained generation 0 belongs in it is ambiguous, so both are reported.
    report.ensembles = options.generations >= 1 ? [ensemble(0), ensemble(1)] : [ensemble(0)];
  },
};
