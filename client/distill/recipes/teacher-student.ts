/**
 * The flow of the teacher → student recipes (kd, fitnets, at, nst): train a teacher on labels;
 * train the student through the method's loss stages; and, unless turned off, the same student
 * (same initial weights and sample order) on labels alone for the same number of passes.
 */
import { WeightedSumLoss, type LossTermConfig } from '../../losses/index.js';
import { plainArchitecture, type FeatureModel } from '../../models.js';
import { CE_ONLY, type DistillOptions, type DistillRecipe } from '../runner.js';

export interface Stage {
  epochs: number;
  loss: LossTermConfig[];
}

/**
 * A teacher → student recipe whose student trains through `stages(options, teacher, student)`;
 * that function checks the feature names it uses (checkFeature) and throws before any training.
 */
export function teacherStudentRecipe(
  summary: string,
  defaults: DistillRecipe['defaults'],
  stages: (options: DistillOptions, teacher: FeatureModel, student: FeatureModel) => Stage[],
): DistillRecipe {
  return {
    summary,
    defaults,
    validate(options) {
      plainArchitecture(options.student);
      plainArchitecture(options.teacher);
    },
    async run(runner, report) {
      const { options } = runner;
      const s = runner.seeds;
      const teacher = runner.build(plainArchitecture(options.teacher), s.teacherInit);
      const studentArchitecture = plainArchitecture(options.student);
      const student = runner.build(studentArchitecture, s.studentInit);
      // Checked before any training: feature names, loss names and params.
      const studentStages = stages(options, teacher, student);
      for (const stage of studentStages) new WeightedSumLoss(stage.loss).dispose();
      report.teacher = await runner.trainModel('teacher', teacher, [{ epochs: options.teacherEpochs, loss: CE_ONLY }], s.teacherOrder);
      if (options.baseline) {
        const baseline = runner.build(studentArchitecture, s.studentInit);
        // The same number of passes over the data as the distilled student, all on labels.
        const passes = studentStages.reduce((a, st) => a + st.epochs, 0);
        report.baseline = await runner.trainModel('baseline: student on labels alone', baseline, [{ epochs: passes, loss: CE_ONLY }], s.studentOrder);
      }
      report.student = await runner.trainModel(`student: ${options.method}`, student, studentStages, s.studentOrder, teacher);
      runner.student = student;
    },
  };
}
