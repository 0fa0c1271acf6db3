/**
 * Every detector on recorded real runs (test/fixtures/diagnose/README.md says how each was made):
 * each failure arm gets its finding, each fix arm and the default run get none.
 */
import { describe, expect, it } from 'vitest';
import { diagnoseFixture, ids } from './helpers.ts';

describe('diagnosis of recorded runs', () => {
  it('the default small-moe run (300 steps) has no findings: the layer-0 start transient is not one', () => {
    const d = diagnoseFixture('default-small-moe');
    expect(ids(d)).toEqual([]);
    expect(d.notes).toEqual([]);
    expect(d.state).toMatchObject({ firstStep: 1, lastStep: 300, trainSteps: 300, validRecords: 4 });
    expect(d.summary).toMatch(/^diagnosis: no findings over steps 1-300/);
  });

  it('the first report: classifier head std 1.0 -> bad start (ln 280) and clip-limited, with the logged numbers', () => {
    const d = diagnoseFixture('classify-head-std-1.0');
    expect(ids(d)).toEqual(['bad-start', 'clip-limited']);
    const start = d.findings.find((f) => f.kind === 'bad-start')!;
    expect(start).toMatchObject({ severity: 'error', firstStep: 0 });
    expect(start.evidence[0]!.values.baseline).toBeCloseTo(Math.log(280), 10);
    expect(start.evidence[0]!.values.initialLoss).toBeCloseTo(16.146, 2);
    expect(start.fix.sets).toEqual(['model.init.headStd=0.02']);
    expect(start.experiment).toBe('head-init');
    expect(start.cause).toMatch(/head is initialised with std 1\b/);
    const clip = d.findings.find((f) => f.kind === 'clip-limited')!;
    expect(clip).toMatchObject({ severity: 'error', firstStep: 1 });
    expect(clip.evidence[0]!.values.gradNorm).toBeCloseTo(218.886, 2);
    expect(clip.evidence[0]!.values.clippedFraction).toBeCloseTo(0.9954, 3);
    expect(clip.status).toBe('ongoing');
    expect(clip.fix.sets).toEqual(['model.init.headStd=0.02']);
  });

  it("the first report's fix: head std 0.02 -> no findings (it starts at ln 280; clipping ~25-70% is not clip-limited)", () => {
    expect(ids(diagnoseFixture('classify-head-std-0.02'))).toEqual([]);
  });

  it('head-init experiment: failure arm bad start + clip-limited, fix arm clean', () => {
    expect(ids(diagnoseFixture('exp-head-std-1.0'))).toEqual(['bad-start', 'clip-limited']);
    expect(ids(diagnoseFixture('exp-head-std-0.02'))).toEqual([]);
  });

  it('router-init experiment: std 1.0 saturates both layers from step 1 (and the pooled aux hides it); std 0.006 is clean', () => {
    const d = diagnoseFixture('exp-router-std-1.0');
    expect(ids(d)).toEqual(['pooled-aux-hides-imbalance', 'router-saturated@layer0', 'router-saturated@layer1']);
    for (const f of d.findings.filter((x) => x.kind === 'router-saturated')) {
      expect(f).toMatchObject({ severity: 'error', firstStep: 1 });
      expect(f.fix.sets).toEqual(['model.init.routerStd=0.006']);
      expect(f.experiment).toBe('router-init');
      expect(f.evidence[0]!.values.firstEntropy as number).toBeLessThan(0.5 * Math.log(4));
    }
    const pooled = d.findings.find((f) => f.kind === 'pooled-aux-hides-imbalance')!;
    expect(pooled.fix.sets).toEqual(['loss.auxConvention=switch']);
    expect(pooled.experiment).toBe('pooled-vs-per-layer');
    expect(ids(diagnoseFixture('exp-router-std-0.006'))).toEqual([]);
  });

  it('nan experiment: guards off -> NaN in the weights + divergence; guards on -> a note only', () => {
    const off = diagnoseFixture('exp-nan-guards-off');
    expect(ids(off)).toEqual(['divergence', 'non-finite']);
    const nf = off.findings.find((f) => f.kind === 'non-finite')!;
    expect(nf).toMatchObject({ severity: 'error', firstStep: 3 });
    expect(nf.fix.sets).toEqual(['stability.guards=true']);
    expect(nf.status).toBe('ongoing');
    const on = diagnoseFixture('exp-nan-guards-on');
    expect(ids(on)).toEqual([]);
    expect(on.notes).toHaveLength(1);
    expect(on.notes[0]!.text).toMatch(/step 3 was skipped by the guards: first non-finite tensor model\.layers\.1\.router_logits \(layer 1\)/);
  });

  it('the second report: a logger that wrote NaN as 0 -> "loss logged as 0" and NaN in the weights', () => {
    const d = diagnoseFixture('exp-nan-naive-logger-view');
    expect(ids(d)).toEqual(['nan-logged-as-zero', 'non-finite']);
    expect(d.findings[0]!.firstStep).toBe(3);
  });

  it('aux-loss experiment: factor 1.0 from step 0 dominates; warmed 0.02 is clean', () => {
    const d = diagnoseFixture('exp-aux-strong');
    expect(ids(d)).toEqual(['aux-dominates']);
    expect(d.findings[0]!.fix.sets).toEqual(['loss.auxFactor=0.02', 'loss.auxWarmupSteps=10']);
    expect(d.findings[0]!.experiment).toBe('aux-loss');
    expect(ids(diagnoseFixture('exp-aux-warmed'))).toEqual([]);
  });

  it('aux-loss experiment, aux off: 40 fast steps show no persistent collapse (layer 0 spreads by step 12), so no finding', () => {
    expect(ids(diagnoseFixture('exp-aux-off'))).toEqual([]);
  });

  it('aux-loss at full length, aux off (200 steps, no shared expert): layer 0 collapses onto 2 experts from step 39', () => {
    const d = diagnoseFixture('aux-off-200-steps');
    expect(ids(d)).toEqual(['routing-collapse@layer0']);
    const f = d.findings[0]!;
    expect(f).toMatchObject({ severity: 'error', layer: 0, firstStep: 39, lastStep: 200, status: 'ongoing', experiment: 'aux-loss' });
    expect(f.fix.sets).toEqual(['loss.auxFactor=0.02', 'loss.auxWarmupSteps=20']);
    expect(f.evidence.map((e) => e.values.deadExperts).filter(Boolean)).toEqual([[0, 2]]);
  });

  it('f16: the loss scale halves to its floor and the run stops -> loss-scale collapse + recurring non-finite', () => {
    const d = diagnoseFixture('f16-collapse');
    expect(ids(d)).toEqual(['loss-scale-collapse', 'non-finite']);
    const ls = d.findings.find((f) => f.kind === 'loss-scale-collapse')!;
    expect(ls.evidence[0]!.values).toMatchObject({ startScale: 65536, minScale: 1, firstAtFloor: 19, badAtFloor: 19 });
    const nf = d.findings.find((f) => f.kind === 'non-finite')!;
    expect(nf).toMatchObject({ severity: 'error', layer: 1, firstStep: 19 });
    expect(nf.evidence[0]!.values.tensor).toBe('model.layers.1.input_layernorm.weight.grad');
  });

  it('f16: a burst of three overflow skips after the scale settled -> repeated overflow skips (warning); the first 9 steps are clean', () => {
    const d = diagnoseFixture('f16-overflows');
    expect(ids(d)).toEqual(['overflow-skips']);
    expect(d.findings[0]!.firstStep).toBe(10);
  });

  it('a rate 50x too high with no clip or warm-up: the routers saturate and collapse, and the main loss never falls', () => {
    const d = diagnoseFixture('lr-high');
    expect(ids(d)).toEqual(['no-progress', 'router-saturated@layer0', 'routing-collapse@layer0', 'routing-collapse@layer1']);
    for (const f of d.findings) expect(f.fix.sets.slice(0, 2)).toEqual(['optim.lr=0.001', 'optim.clipNorm=1']);
    const np = d.findings.find((f) => f.kind === 'no-progress')!;
    expect(np.firstStep).toBe(50);
    expect(np.evidence[1]!.values).toMatchObject({ step: 3 }); // the jump to 3.05 at step 3
  });

  it('aux factor 10 from step 0: dominates (50x the main loss), but the main loss still falls: no aux-fights-main', () => {
    const d = diagnoseFixture('aux-factor-10');
    expect(ids(d)).toEqual(['aux-dominates']);
    expect(d.findings[0]!.evidence[0]!.values.ratio as number).toBeGreaterThan(10);
  });

  it('400 steps over 100 windows (64 passes), 17 validations: no overfitting, spike or no-progress false alarm', () => {
    const d = diagnoseFixture('small-data-400-steps');
    expect(ids(d)).toEqual([]);
    expect(d.state.validRecords).toBe(17);
  });

  it('46 windows of pure noise, constant rate 3e-3, no weight decay: validation rises from step 140 while the train loss falls', () => {
    const d = diagnoseFixture('overfitting');
    expect(ids(d)).toEqual(['overfitting']);
    const f = d.findings[0]!;
    expect(f).toMatchObject({ severity: 'warning', firstStep: 140, lastStep: 300, status: 'ongoing' });
    expect(f.evidence[0]!.values).toMatchObject({ bestStep: 100 });
    expect(f.fix.sets).toEqual(['schedule.steps=100', 'optim.weightDecay=0.1']);
  });
});
