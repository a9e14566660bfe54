/** Attention transfer (Zagoruyko & Komodakis 2017): CE + Σ_pairs β/2 · AT, as the paper scales it (client/losses/attention-transfer.ts). */
import { checkFeature, THIN_CNN } from '../runner.js';
import { teacherStudentRecipe } from './teacher-student.js';

export const at = teacherStudentRecipe(
  'Zagoruyko & Komodakis 2017: CE + attention transfer',
  { teacher: 'cnn', student: THIN_CNN, temperature: 4, beta: 1000 },
  (options, teacher, student) => {
    // The paper: β = 10³ "divided by the number of elements in the attention map and batch
    // size for each layer"; the batch mean is in the term, the H·W here, β/2 as in eq. (2).
    const pairs = options.pairs.map((pair) => {
      checkFeature(student, 'student', pair.student, 'at', true);
      const shape = checkFeature(teacher, 'teacher', pair.teacher, 'at', true);
      return { ...pair, weight: options.beta / 2 / (shape[0]! * shape[1]!) };
    });
    return [{ epochs: options.epochs, loss: options.loss ?? [{ name: 'ce', weight: 1 }, { name: 'at', weight: 1, params: { pairs } }] }];
  },
);
