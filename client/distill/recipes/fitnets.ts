/**
 * FitNets (Romero et al. 2015) in the paper's two stages: stage 1 trains the student's layers up
 * to the guided one, with the regressor, on the hint alone (client/losses/fitnets.ts); stage 2
 * the whole student with KD.
 */
import { checkFeature, kdLossConfig, THIN_CNN } from '../runner.js';
import { teacherStudentRecipe } from './teacher-student.js';

export const fitnets = teacherStudentRecipe(
  'Romero et al. 2015: stage 1 hints through a learned regressor, stage 2 KD',
  { teacher: 'cnn', student: THIN_CNN, temperature: 4 },
  (options, teacher, student) => {
    checkFeature(student, 'student', options.hint.student, 'fitnets', false);
    checkFeature(teacher, 'teacher', options.hint.teacher, 'fitnets', false);
    return [
      { epochs: options.hintEpochs, loss: [{ name: 'fitnets', weight: 1, params: { student: options.hint.student, teacher: options.hint.teacher } }] },
      { epochs: options.epochs, loss: options.loss ?? kdLossConfig(options.temperature, options.alpha) },
    ];
  },
);
