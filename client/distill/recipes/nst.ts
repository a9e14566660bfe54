/** Neuron selectivity transfer (Huang & Wang 2017): CE + λ/2 · MMD² (client/losses/nst.ts). */
import { checkFeature, THIN_CNN } from '../runner.js';
import { teacherStudentRecipe } from './teacher-student.js';

export const nst = teacherStudentRecipe(
  'Huang & Wang 2017: CE + MMD² of neuron selectivities (polynomial kernel)',
  { teacher: 'cnn', student: THIN_CNN, temperature: 4, beta: 50 },
  (options, teacher, student) => {
    for (const pair of options.pairs) {
      checkFeature(student, 'student', pair.student, 'nst', true);
      checkFeature(teacher, 'teacher', pair.teacher, 'nst', true);
    }
    return [{ epochs: options.epochs, loss: options.loss ?? [{ name: 'ce', weight: 1 }, { name: 'nst', weight: options.beta / 2, params: { pairs: options.pairs } }] }];
  },
);
