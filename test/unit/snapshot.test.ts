// Whole-output review: any change to what an environment deploys shows up as a snapshot
// diff. The specific properties are asserted in the other test files.
import { describe, expect, it } from 'vitest';
import { synthBase, synthEnvironment } from '../../lib/internal';
import { ENVIRONMENTS } from '../../main';

describe('synthesized objects match the reviewed snapshots', () => {
  it('the environment-neutral base', () => {
    expect(synthBase()).toMatchSnapshot();
  });

  for (const profile of ENVIRONMENTS) {
    it(`the ${profile.name} environment`, () => {
      expect(synthEnvironment(profile)).toMatchSnapshot();
    });
  }
});
