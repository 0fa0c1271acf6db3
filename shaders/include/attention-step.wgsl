    // Online softmax step for score s (shaders/attention-rows.wgsl and attention-tiled.wgsl): running max
    // m (starts very negative, not -inf, so m - s stays finite) and denominator l. The accumulators
    // are rescaled only when the max grows, which is rare after the first keys.
    if (s > m) {
      let corr = exp(m - s);
      l = l * corr;
{{FWD_RESCALE}}
      m = s;
    }
    let p = exp(s - m);
    l = l + p;
{{FWD_UPDATE}}
