/**
 * Self-test of the comparison helper (test/reference/compare.ts): NaN and Inf fail on either
 * side unless declared, one NaN in the reference cannot void a relativeToMax comparison, the
 * bound is inclusive and exact, and an empty comparison is refused.
 */
import { describe, it, expect } from 'vitest';
import { compareArrays, expectClose } from './compare.ts';

const fails = (f: () => unknown, re: RegExp = /mismatch/) => expect(f).toThrow(re);

describe('expectClose', () => {
  it('fails the issue-18 example: a NaN in the reference with relativeToMax', () => {
    fails(() => expectClose([5, 999, -7], [NaN, 2, 3], { rtol: 1e-5, relativeToMax: true }));
    // Without the NaN the same values are far apart too: the NaN must not hide that.
    fails(() => expectClose([5, 999, -7], [1, 2, 3], { rtol: 1e-5, relativeToMax: true }));
  });

  it('fails a NaN or an Inf on either side, per element and relative to max', () => {
    for (const relativeToMax of [false, true]) {
      fails(() => expectClose([1, 2, 3], [1, NaN, 3], { rtol: 1, relativeToMax }), /non-finite.*\[1\]/);
      fails(() => expectClose([1, 2, 3], [1, Infinity, 3], { rtol: 1, relativeToMax }), /non-finite/);
      fails(() => expectClose([1, 2, 3], [1, 2, -Infinity], { rtol: 1, relativeToMax }), /non-finite/);
      fails(() => expectClose([1, NaN, 3], [1, 2, 3], { rtol: 1, relativeToMax }), /non-finite/);
      fails(() => expectClose([Infinity, 2, 3], [1, 2, 3], { rtol: 1, relativeToMax }), /non-finite/);
      // The same non-finite value on both sides is still a failure when it was not declared.
      fails(() => expectClose([NaN, 2], [NaN, 2], { rtol: 1, relativeToMax }), /non-finite/);
      fails(() => expectClose([Infinity, 2], [Infinity, 2], { rtol: 1, relativeToMax }), /non-finite/);
    }
  });

  it('a declared non-finite position must hold the identical non-finite value', () => {
    expectClose([NaN, 2, Infinity, -Infinity], [NaN, 2, Infinity, -Infinity], { rtol: 1e-7, nonFiniteAt: [0, 2, 3] });
    expectClose([1, NaN], [1, NaN], { rtol: 1e-7, nonFiniteAt: (i) => i === 1, relativeToMax: true });
    fails(() => expectClose([0, 2], [NaN, 2], { rtol: 1e-7, nonFiniteAt: [0] }), /non-finite/); // finite where NaN was declared
    fails(() => expectClose([-Infinity, 2], [Infinity, 2], { rtol: 1e-7, nonFiniteAt: [0] }), /non-finite/);
    fails(() => expectClose([NaN, 2], [Infinity, 2], { rtol: 1e-7, nonFiniteAt: [0] }), /non-finite/);
    fails(() => expectClose([1, 2], [1, 2], { rtol: 1e-7, nonFiniteAt: [0] }), /non-finite/); // declared but the reference is finite
    // Declaring one position does not excuse another.
    fails(() => expectClose([NaN, NaN], [NaN, 2], { rtol: 1e-7, nonFiniteAt: [0] }), /non-finite.*\[1\]/);
    expect(() => expectClose([1], [1], { rtol: 1, nonFiniteAt: [3] })).toThrow(/outside/);
  });

  it('relativeToMax scales by the largest finite |expected|; a declared NaN does not void the rest', () => {
    expectClose([100, 1.5], [100, 1], { rtol: 5e-3, relativeToMax: true }); // 0.5 / 100
    fails(() => expectClose([100, 1.5], [100, 1], { rtol: 5e-3 })); // 0.5 / 1 per element
    fails(() => expectClose([NaN, 100, 1.5], [NaN, 100, 1], { rtol: 4e-3, relativeToMax: true, nonFiniteAt: [0] }));
    expect(compareArrays([NaN, 100, 1.5], [NaN, 100, 1], { rtol: 1, relativeToMax: true, nonFiniteAt: [0] }).maxRelErr).toBe(0.005);
  });

  it('the bound is inclusive and exact; atol is a floor of the scale', () => {
    expect(compareArrays([1.25], [1], { rtol: 0.25 }).maxRelErr).toBe(0.25);
    expectClose([1.25], [1], { rtol: 0.25 });
    fails(() => expectClose([1.25], [1], { rtol: 0.2499 }));
    expectClose([1e-4], [0], { rtol: 1e-3 }); // |e| = 0 and no atol: the error is absolute
    fails(() => expectClose([2e-3], [0], { rtol: 1e-3 }));
    expectClose([2e-3], [0], { rtol: 1e-3, atol: 2 }); // 2e-3 / (0 + 2)
  });

  it('refuses length mismatches and empty comparisons', () => {
    expect(() => expectClose([1, 2], [1], { rtol: 1 })).toThrow(/length 2 != expected 1/);
    fails(() => expectClose([], [], { rtol: 1 }), /nothing to compare/);
  });

  it('names the seed to replay with', () => {
    fails(() => expectClose([2], [1], { rtol: 1e-3, seed: 1234, what: 'y' }), /y mismatch \(seed 1234; rerun with TEST_SEED=1234\)/);
  });
});
