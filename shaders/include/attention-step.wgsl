    // Online softmax step for score s (shaders/attention-rows.wgsl and attention-tiled.wgsl): running max
    // m (starts very negative, not -inf, so m - s stays finite), the current key block's partial
    // denominator lb and output accumulators ab, relative to m. They are rescaled only when the max
    // grows, which is rare after the first keys; attention-fold adds them to the totals.
    if (s > m) {
      let corr = exp(m - s);
      lb = lb * corr;
{{FWD_RESCALE}}
      m = s;
    }
    let p = exp(s - m);
    lb = lb + p;
{{FWD_UPDATE}}
