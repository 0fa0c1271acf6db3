    // After each key block (shaders/attention-rows.wgsl and attention-tiled.wgsl): add the block's
    // partial sums (lb, ab, relative to the running max m) to the totals (l, a, relative to mt <= m),
    // so no f32 sum runs over T keys in a line (docs/KERNELS.md, "Accuracy of long sums"). The
    // totals are rescaled here, once per block and only when the block raised the max: the inner
    // loop touches the block's accumulators only.
    if (m > mt) {
      let corr = exp(mt - m);
      l = l * corr;
{{FWD_RESCALE_TOTAL}}
      mt = m;
    }
    l = l + lb;
    lb = 0.0;
{{FWD_FOLD}}
