// The actions' wait inputs: a duration a timer can hold, or a clear error (Node fires a timer of more than
// 2^31 - 1 ms at once, so "99999d" would have reported "still running" immediately).
import { afterEach, describe, expect, test } from '@jest/globals';
import { timeoutInput } from '../../actions/shared/verdict.js';

afterEach(() => {
  delete process.env.INPUT_TIMEOUT;
});

describe('timeoutInput', () => {
  test.each([
    ['6h', 6 * 3_600_000],
    ['24d', 24 * 86_400_000],
  ])('%s is %d ms', (text, ms) => {
    process.env.INPUT_TIMEOUT = text;
    expect(timeoutInput('timeout', '1h')).toBe(ms);
  });

  test.each([
    ['99999999999999999999d', 'input timeout is 99999999999999999999d, over the longest wait of 24d'],
    ['25d', 'input timeout is 25d, over the longest wait of 24d'],
    ['soon', 'input timeout should be a duration such as "30m" or "6h", got "soon"'],
  ])('%s is refused', (text, message) => {
    process.env.INPUT_TIMEOUT = text;
    expect(() => timeoutInput('timeout', '1h')).toThrow(message);
  });
});
