/** Hinton, Vinyals & Dean (2015): a CNN teacher, an MLP student on α·CE + (1 − α)·T²·KL (client/losses/kd.ts). */
import { kdLossConfig } from '../runner.js';
import { teacherStudentRecipe } from './teacher-student.js';

export const kd = teacherStudentRecipe(
  'Hinton et al. 2015: α·CE + (1−α)·T²·KL(teacher_T ‖ student_T)',
  { teacher: 'cnn', student: 'd32', temperature: 4 },
  (options) => [{ epochs: options.epochs, loss: options.loss ?? kdLossConfig(options.temperature, options.alpha) }],
);
