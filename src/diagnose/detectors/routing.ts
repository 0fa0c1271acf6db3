/**
 * Routing, per layer (docs/DESIGN.md §6, §7.1). Three conditions, each judged on clean steps only
 * (a skipped or non-finite step's routing is not valid; null / NaN statistics are ignored too):
 *
 * - router-saturated: the router's mean entropy below half of ln E. From the layer's first steps,
 *   for `saturatedInitSteps` clean steps in a row, it is the init (router std 1.0: the softmax is
 *   one-hot from step 1, the top-k picks are fixed by the random weights, the gradient through the
 *   probabilities vanishes, and nothing moves them). Later on, low entropy alone is specialisation,
 *   not a defect: it counts only with the layer's Switch loss >= `saturatedSwitch` (the confident
 *   probabilities sit on the overloaded experts) for `persistSteps`.
 * - routing-collapse: the k most loaded experts take >= `collapseTopShare` of the top-k picks
 *   (balanced: k/E) for `persistSteps` clean steps in a row: every token picks the same experts,
 *   and an MoE of E experts trains as a dense FFN of k.
 * - dead-experts: an expert gets < `deadLoad`/E of the picks for `persistSteps` in a row.
 *
 * Transient start: with a near-uniform router (std 0.006) every token shares the same tiny logit
 * differences, so the default run's layer 0 sends all tokens to the same two experts for its first
 * ~16 steps (top-2 share 0.93-1.0, two experts at load 0) and then spreads as the aux factor ramps
 * up. `persistSteps` = 50 is three times that: the transient is not a finding.
 *
 * pooled-aux-hides-imbalance: training with the pooled (HF / Time-MoE) aux loss (factor > 0),
 * balanced = k, the pooled value reads within 15% of k while some layer's Switch loss (balanced 1) is above 1.5, for
 * `pooledSteps` clean steps: pooling over layers hides per-layer imbalance.
 */
import { setValue, type RunContext } from '../context.ts';
import { fmt } from '../stats.ts';
import type { DiagRecord, Finding, LayerRouting, TrainRecord } from '../types.ts';
import { findingId, isCleanStep, type Detector } from './detector.ts';

export const ROUTING = {
  collapseTopShare: 0.9,
  /** A dead expert gets less than this fraction of its balanced share 1/E. */
  deadLoad: 0.01,
  persistSteps: 50,
  /** Saturated: mean router entropy below this fraction of ln E. */
  saturatedEntropy: 0.5,
  saturatedInitSteps: 10,
  saturatedSwitch: 1.5,
  /** A condition is resolved after this many clean steps without it. */
  recoverSteps: 10,
  pooledWithin: 0.15,
  pooledSwitch: 1.5,
  pooledSteps: 10,
} as const;

interface Streak {
  /** Consecutive clean steps the condition held, and where the streak began. */
  n: number;
  from: number;
  /** Set once the streak reached its threshold. */
  fired: { first: number; last: number; longest: number } | null;
}

const streak = (): Streak => ({ n: 0, from: 0, fired: null });

function advance(s: Streak, holds: boolean, step: number, threshold: number): void {
  if (holds) {
    if (s.n === 0) s.from = step;
    s.n++;
    if (s.n >= threshold && !s.fired) s.fired = { first: s.from, last: step, longest: s.n };
    // Once fired, any step where the condition holds again keeps it ongoing.
    if (s.fired) {
      s.fired.last = step;
      s.fired.longest = Math.max(s.fired.longest, s.n);
    }
  } else s.n = 0;
}

interface LayerState {
  layer: number;
  E: number;
  clean: number;
  lastClean: number;
  /** Clean steps of this layer since the start, for "resolved". */
  cleanSteps: number[];
  collapse: Streak;
  sat: Streak;
  satInit: Streak;
  satInitOpen: boolean;
  dead: Streak[];
  last: { step: number; load: number[]; topShare: number; entropy: number; maxShare: number; switchLoss?: number } | null;
  firstEntropy: number | null;
  minEntropy: number;
}

function topShare(load: readonly number[], k: number): number {
  return [...load]
    .sort((a, b) => b - a)
    .slice(0, k)
    .reduce((a, b) => a + b, 0);
}

const loadStr = (load: readonly number[]) => `[${load.map((v) => v.toFixed(2)).join(', ')}]`;

function validRouting(l: LayerRouting): l is LayerRouting & { load: number[] } {
  return l.load !== null && l.load.length > 1 && l.load.every(Number.isFinite) && Number.isFinite(l.entropy);
}

export function routing(ctx: RunContext): Detector {
  const layers = new Map<number, LayerState>();
  const pooled = streak();
  let pooledLast: { step: number; aux: number; worst: number; layer: number } | null = null;
  let lastCleanStep = 0;
  const k = (E: number) => Math.min(ctx.topK ?? 2, E);

  const stateOf = (l: LayerRouting & { load: number[] }): LayerState => {
    let s = layers.get(l.layer);
    if (!s) {
      s = {
        layer: l.layer,
        E: l.load.length,
        clean: 0,
        lastClean: 0,
        cleanSteps: [],
        collapse: streak(),
        sat: streak(),
        satInit: streak(),
        satInitOpen: true,
        dead: l.load.map(streak),
        last: null,
        firstEntropy: null,
        minEntropy: Infinity,
      };
      layers.set(l.layer, s);
    }
    return s;
  };

  const observeLayer = (r: TrainRecord, l: LayerRouting & { load: number[] }) => {
    const s = stateOf(l);
    if (l.load.length !== s.E) return;
    const E = s.E;
    const kk = k(E);
    const ts = topShare(l.load, kk);
    const lnE = Math.log(E);
    s.clean++;
    s.lastClean = r.step;
    s.firstEntropy ??= l.entropy;
    s.minEntropy = Math.min(s.minEntropy, l.entropy);
    s.last = {
      step: r.step,
      load: l.load,
      topShare: ts,
      entropy: l.entropy,
      maxShare: l.maxShare,
      ...(l.switchLoss !== undefined ? { switchLoss: l.switchLoss } : {}),
    };
    advance(s.collapse, E > kk && ts >= ROUTING.collapseTopShare, r.step, ROUTING.persistSteps);
    l.load.forEach((v, e) => advance(s.dead[e]!, E > kk && v < ROUTING.deadLoad / E, r.step, ROUTING.persistSteps));
    const low = l.entropy < ROUTING.saturatedEntropy * lnE;
    if (s.satInit.fired) {
      // Once fired, the init saturation is ongoing while the entropy stays low.
      if (low) {
        s.satInit.fired.last = r.step;
        s.satInit.n++;
        s.satInit.fired.longest = Math.max(s.satInit.fired.longest, s.satInit.n);
      } else s.satInit.n = 0;
    } else if (s.satInitOpen) {
      // Only a streak that starts at the layer's first clean step is the init's doing.
      advance(s.satInit, low, r.step, ROUTING.saturatedInitSteps);
      if (!low) s.satInitOpen = false;
    }
    advance(s.sat, low && (l.switchLoss ?? 0) >= ROUTING.saturatedSwitch, r.step, ROUTING.persistSteps);
  };

  /** ongoing: the condition held within the last recoverSteps clean steps of the layer. */
  const ongoing = (s: LayerState, last: number) => {
    const recent = s.cleanSteps.slice(-ROUTING.recoverSteps);
    return recent.length === 0 || last >= recent[0]!;
  };

  const fixFor = (what: 'collapse' | 'saturated'): { sets: string[]; note: string; experiment: string | null } => {
    if (ctx.routerStd <= 0.1 && ctx.lr !== null && ctx.lr >= 0.01)
      return {
        sets: ['optim.lr=0.001', ...(ctx.clipNorm === 0 ? ['optim.clipNorm=1'] : [])],
        note: `optim.lr ${fmt(ctx.lr)} (1e-3 is typical) blows the router logits up within a few steps: the softmax saturates on whichever experts the first big updates favoured`,
        experiment: null,
      };
    if (ctx.routerStd > 0.1 || what === 'saturated') {
      if (ctx.routerStd > 0.01)
        return {
          sets: ['model.init.routerStd=0.006'],
          note: `router std ${fmt(ctx.routerStd)} → 0.006 (1e-3..1e-2): the router starts near uniform, every expert gets gradient, and the aux loss can move the picks`,
          experiment: 'router-init',
        };
      return {
        sets: ctx.auxFactor > 0 ? ['loss.zCoef=0.001'] : ['loss.zCoef=0.001', 'loss.auxFactor=0.02'],
        note: 'the router logits grew until the softmax saturated: the router z-loss (ST-MoE, 1e-3) keeps them small',
        experiment: null,
      };
    }
    if (ctx.auxFactor === 0)
      return {
        sets: ['loss.auxFactor=0.02', `loss.auxWarmupSteps=${Math.max(10, Math.round((ctx.steps ?? 1000) / 10))}`],
        note: 'without an aux loss nothing pushes tokens away from the experts a near-uniform router happens to prefer; 0.02 (Time-MoE), ramped up',
        experiment: 'aux-loss',
      };
    if (ctx.auxConvention === 'pooled')
      return {
        sets: ['loss.auxConvention=switch'],
        note: 'the pooled aux loss balances the experts over all layers together and can miss one layer; the Switch convention balances each layer',
        experiment: 'pooled-vs-per-layer',
      };
    return {
      sets: [`loss.auxFactor=${setValue(Math.min(ctx.auxFactor * 2, 0.1))}`],
      note: `a stronger balancing pull (now ${fmt(ctx.auxFactor)}); keep it ramped (loss.auxWarmupSteps) so it does not fight the main loss early`,
      experiment: 'aux-loss',
    };
  };

  return {
    observe(r: DiagRecord) {
      if (r.kind !== 'train' || !isCleanStep(r)) return;
      lastCleanStep = r.step;
      let worst = -Infinity;
      let worstLayer = -1;
      for (const l of r.routing) {
        if (!validRouting(l)) continue;
        observeLayer(r, l);
        layers.get(l.layer)!.cleanSteps.push(r.step);
        const cs = layers.get(l.layer)!.cleanSteps;
        if (cs.length > ROUTING.recoverSteps * 2) cs.splice(0, cs.length - ROUTING.recoverSteps);
        if (l.switchLoss !== undefined && Number.isFinite(l.switchLoss) && l.switchLoss > worst) {
          worst = l.switchLoss;
          worstLayer = l.layer;
        }
      }
      const kk = ctx.topK ?? 2;
      const hides =
        ctx.auxConvention === 'pooled' &&
        r.auxFactor > 0 &&
        Number.isFinite(r.aux) &&
        Math.abs(r.aux - kk) / kk <= ROUTING.pooledWithin &&
        worst > ROUTING.pooledSwitch;
      advance(pooled, hides, r.step, ROUTING.pooledSteps);
      if (hides) pooledLast = { step: r.step, aux: r.aux, worst, layer: worstLayer };
    },
    findings(): Finding[] {
      const out: Finding[] = [];
      for (const s of [...layers.values()].sort((a, b) => a.layer - b.layer)) {
        const E = s.E;
        const kk = k(E);
        const lnE = Math.log(E);
        const last = s.last!;
        const lastEv = {
          step: last.step,
          text: `step ${last.step}: load ${loadStr(last.load)} (balanced ${fmt(1 / E, 3)} each), top-${kk} share ${fmt(last.topShare, 3)} (balanced ${fmt(kk / E, 3)}), router entropy ${fmt(last.entropy, 3)} nats (uniform ln ${E} = ${fmt(lnE, 3)})${last.switchLoss !== undefined ? `, Switch loss ${fmt(last.switchLoss, 3)} (balanced 1)` : ''}`,
          values: { load: last.load, topShare: last.topShare, entropy: last.entropy, lnE, maxShare: last.maxShare, switchLoss: last.switchLoss ?? null },
        };
        const satFired = s.satInit.fired ?? s.sat.fired;
        if (satFired) {
          const init = !!s.satInit.fired;
          const fix = fixFor('saturated');
          out.push({
            id: findingId('router-saturated', s.layer),
            kind: 'router-saturated',
            severity: 'error',
            title: `Layer ${s.layer}: router saturated${init ? ' from the first step' : ''}`,
            layer: s.layer,
            evidence: [
              {
                step: satFired.first,
                text: init
                  ? `router entropy ${fmt(s.firstEntropy, 3)} nats at the first step, below ${ROUTING.saturatedEntropy} x ln ${E} = ${fmt(ROUTING.saturatedEntropy * lnE, 3)} for ${satFired.longest} clean steps in a row from step ${satFired.first}`
                  : `router entropy below ${fmt(ROUTING.saturatedEntropy * lnE, 3)} nats with a Switch loss >= ${ROUTING.saturatedSwitch} for ${satFired.longest} clean steps from step ${satFired.first}`,
                values: { firstEntropy: s.firstEntropy, minEntropy: s.minEntropy, threshold: ROUTING.saturatedEntropy * lnE, steps: satFired.longest },
              },
              lastEv,
            ],
            cause: init
              ? `the router's softmax is nearly one-hot from step 1: router logits are hidden·W with |hidden| ≈ √d after RMSNorm, so router std ${fmt(ctx.routerStd)} (model.init.routerStd) gives logits of size ≈ ${ctx.hidden ? fmt(ctx.routerStd * Math.sqrt(ctx.hidden), 2) : 'std·√d'}. The top-${kk} picks are fixed by the random init, the gradient through the saturated probabilities vanishes, and the aux loss cannot move them (docs/DESIGN.md §7.1)`
              : 'the router logits grew during training until the probabilities are near one-hot on overloaded experts (high Switch loss): the aux loss has lost its grip',
            fix: { sets: fix.sets, note: fix.note },
            experiment: fix.experiment,
            firstStep: satFired.first,
            lastStep: satFired.last,
            status: ongoing(s, satFired.last) ? 'ongoing' : 'resolved',
          });
        }
        const deadNow = s.dead.flatMap((d, e) => (d.n >= ROUTING.persistSteps ? [e] : []));
        const deadEver = s.dead.flatMap((d, e) => (d.fired ? [e] : []));
        if (s.collapse.fired) {
          const c = s.collapse.fired;
          const top = last.load
            .map((v, e) => [v, e] as const)
            .sort((a, b) => b[0] - a[0])
            .slice(0, kk)
            .map(([, e]) => e)
            .sort((a, b) => a - b);
          const fix = fixFor('collapse');
          out.push({
            id: findingId('routing-collapse', s.layer),
            kind: 'routing-collapse',
            severity: 'error',
            title: `Layer ${s.layer}: routing collapsed onto ${kk} of ${E} experts`,
            layer: s.layer,
            evidence: [
              {
                step: c.first,
                text: `the ${kk} most loaded experts took >= ${fmt(ROUTING.collapseTopShare)} of the picks for ${c.longest} clean steps in a row from step ${c.first} (balanced ${fmt(kk / E, 3)})`,
                values: { steps: c.longest, threshold: ROUTING.collapseTopShare },
              },
              lastEv,
              ...(deadEver.length
                ? [
                    {
                      step: last.step,
                      text: `experts ${deadEver.join(', ')} got < ${fmt(ROUTING.deadLoad / E, 2)} of the picks for >= ${ROUTING.persistSteps} steps`,
                      values: { deadExperts: deadEver },
                    },
                  ]
                : []),
            ],
            cause: `every token picks the same experts (now ${top.join(', ')}), so an MoE of ${E} experts trains as a dense FFN of ${kk}${ctx.auxFactor === 0 ? '; the aux loss is off (loss.auxFactor 0), so nothing pushes tokens elsewhere' : ctx.routerStd > 0.1 ? `; router std ${fmt(ctx.routerStd)} fixed the picks at init` : `; the balancing pull (loss.auxFactor ${fmt(ctx.auxFactor)}, ${ctx.auxConvention}) does not hold this layer`}`,
            fix: { sets: fix.sets, note: fix.note },
            experiment: fix.experiment,
            firstStep: c.first,
            lastStep: c.last,
            status: ongoing(s, c.last) ? 'ongoing' : 'resolved',
          });
        } else if (deadEver.length) {
          const first = Math.min(...deadEver.map((e) => s.dead[e]!.fired!.first));
          const lastHeld = Math.max(...deadEver.map((e) => s.dead[e]!.fired!.last));
          const fix = fixFor('collapse');
          out.push({
            id: findingId('dead-experts', s.layer),
            kind: 'dead-experts',
            severity: 'warning',
            title: `Layer ${s.layer}: expert${deadEver.length > 1 ? 's' : ''} ${deadEver.join(', ')} get${deadEver.length > 1 ? '' : 's'} no tokens`,
            layer: s.layer,
            evidence: [
              {
                step: first,
                text: `expert${deadEver.length > 1 ? 's' : ''} ${deadEver.join(', ')} got < ${fmt(ROUTING.deadLoad / E, 2)} of the picks (balanced ${fmt(1 / E, 3)}) for >= ${ROUTING.persistSteps} clean steps in a row from step ${first}${deadNow.length ? `; still: ${deadNow.join(', ')}` : '; all picked again since'}`,
                values: { deadExperts: deadEver, stillDead: deadNow },
              },
              lastEv,
            ],
            cause: `${deadEver.length} of ${E} experts receive no tokens, so they get no gradient and never learn; the layer has ${E - deadEver.length} experts in effect`,
            fix: { sets: fix.sets, note: fix.note },
            experiment: fix.experiment,
            firstStep: first,
            lastStep: lastHeld,
            status: deadNow.length ? 'ongoing' : 'resolved',
          });
        }
      }
      if (pooled.fired && pooledLast) {
        const p = pooled.fired;
        const kk = ctx.topK ?? 2;
        out.push({
          id: 'pooled-aux-hides-imbalance',
          kind: 'pooled-aux-hides-imbalance',
          severity: 'warning',
          title: 'The pooled aux loss reads balanced while a layer is not',
          layer: null,
          evidence: [
            {
              step: p.first,
              text: `for ${p.longest} clean steps in a row from step ${p.first} the pooled aux loss was within ${ROUTING.pooledWithin * 100}% of its balanced value k = ${kk} while some layer's Switch loss was above ${ROUTING.pooledSwitch} (balanced 1)`,
              values: { steps: p.longest },
            },
            {
              step: pooledLast.step,
              text: `step ${pooledLast.step}: pooled aux ${fmt(pooledLast.aux, 3)}, layer ${pooledLast.layer} Switch loss ${fmt(pooledLast.worst, 3)}`,
              values: { aux: pooledLast.aux, switchLoss: pooledLast.worst, layer: pooledLast.layer },
            },
          ],
          cause:
            'the HF / Time-MoE aux loss pools the router outputs of all layers before computing f·P, so layers imbalanced onto different experts add up to an even count; expert i of layer 0 and expert i of layer 1 are different weights (docs/DESIGN.md §6)',
          fix: { sets: ['loss.auxConvention=switch'], note: 'balance each layer (mean of per-layer Switch losses, balanced 1) instead of the pooled count' },
          experiment: 'pooled-vs-per-layer',
          firstStep: p.first,
          lastStep: p.last,
          status: lastCleanStep - p.last < ROUTING.recoverSteps ? 'ongoing' : 'resolved',
        });
      }
      return out;
    },
  };
}
