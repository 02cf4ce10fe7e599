'use strict';
// The explorer's page: plain JavaScript, no library. Data arrives through scripts (explorer_index.js, then one
// episode_<k>.js per episode when it is chosen) that call vlascopeIndex / vlascopeEpisode.
(() => {
  const state = { index: null, loaded: null, episode: null, entry: null, chunk: 0 };
  const $ = (id) => document.getElementById(id);
  const SCALE = 3;  // camera frames drawn at 3×

  window.vlascopeIndex = (key, data) => { state.index = data; };
  window.vlascopeEpisode = (key, data) => { state.loaded = data; };
  window.addEventListener('error', (e) => { $('status').textContent = 'error: ' + e.message; });

  function loadScript(src) {
    return new Promise((resolve, reject) => {
      const s = document.createElement('script');
      s.src = src;
      s.onload = resolve;
      s.onerror = () => reject(new Error('cannot load ' + src));
      document.head.appendChild(s);
    });
  }
  const cache = new Map();  // script → episode data
  let queue = Promise.resolve();  // one load at a time: every episode script hands over through state.loaded
  function loadEpisode(entry) {
    const load = async () => {
      if (!cache.has(entry.script)) {
        state.loaded = null;
        await loadScript(entry.script);
        if (!state.loaded) throw new Error(entry.script + ' did not hand over its data');
        cache.set(entry.script, state.loaded);
      }
      return cache.get(entry.script);
    };
    const next = queue.then(load, load);
    queue = next.catch(() => {});
    return next;
  }
  function option(select, value, text) {
    const o = document.createElement('option');
    o.value = value;
    o.textContent = text;
    select.appendChild(o);
  }

  // ---- attention over the frames ----------------------------------------------------------------------------
  // LeRobot's resize_with_pad: the frame keeps its aspect ratio inside the model input, padded left and top.
  function padGeometry(frameW, frameH, inputW, inputH) {
    const ratio = Math.max(frameW / inputW, frameH / inputH);
    const w = Math.floor(frameW / ratio), h = Math.floor(frameH / ratio);
    return { w, h, left: inputW - w, top: inputH - h };
  }
  function currentRow() {
    const ep = state.episode, chunk = ep.chunks[state.chunk];
    const stream = $('stream').value, layer = +$('layer').value, query = +$('query').value, head = $('head').value;
    const heads = chunk[stream] && chunk[stream][layer];
    if (!heads) return null;
    if (head !== 'mean') return heads[+head][query];
    const rows = heads.map((h) => h[query]).filter((r) => r);
    if (!rows.length) return null;
    return rows[0].map((_, k) => rows.reduce((s, r) => s + r[k], 0) / rows.length);
  }
  function drawCameras() {
    const ep = state.episode, chunk = ep.chunks[state.chunk], row = currentRow();
    const [rows, cols] = ep.grid, [inW, inH] = ep.input;
    const box = $('cameras');
    box.textContent = '';
    ep.cameras.forEach((camera, c) => {
      // Frame sizes per camera (`frame`, one size for all, in episode files written before 2026-12-07 16:00).
      const size = (ep.frames && ep.frames[camera]) || ep.frame;
      if (!size) return;  // a camera whose frames were not written
      const [fw, fh] = size;
      const g = padGeometry(fw, fh, inW, inH);
      const fig = document.createElement('figure');
      const canvas = document.createElement('canvas');
      canvas.width = fw * SCALE;
      canvas.height = fh * SCALE;
      canvas.id = 'camera-' + camera;
      const caption = document.createElement('figcaption');
      fig.append(canvas, caption);
      box.appendChild(fig);
      const ctx = canvas.getContext('2d');
      const img = new Image();
      img.onload = () => {
        ctx.imageSmoothingEnabled = false;
        ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
        if (!row) return;
        let max = 0, share = 0;
        ep.keys.forEach((k, i) => { if (k.kind === 'image' && k.camera === c) { max = Math.max(max, row[i]); share += row[i]; } });
        ep.keys.forEach((k, i) => {
          if (k.kind !== 'image' || k.camera !== c || max <= 0) return;
          const x0 = ((k.col * inW / cols) - g.left) * fw / g.w, x1 = (((k.col + 1) * inW / cols) - g.left) * fw / g.w;
          const y0 = ((k.row * inH / rows) - g.top) * fh / g.h, y1 = (((k.row + 1) * inH / rows) - g.top) * fh / g.h;
          ctx.fillStyle = `rgba(255, 60, 0, ${(0.75 * row[i] / max).toFixed(3)})`;
          ctx.fillRect(x0 * SCALE, y0 * SCALE, (x1 - x0) * SCALE, (y1 - y0) * SCALE);
        });
        canvas.dataset.drawn = String(state.chunk) + ':' + $('stream').value + $('layer').value + $('head').value + $('query').value;
        caption.textContent = `${camera}: ${(100 * share).toFixed(1)} % of the row's attention`;
      };
      img.onerror = () => { caption.textContent = camera + ': frame missing (' + chunk.images[camera] + ')'; };
      img.src = state.entry.study + '/' + chunk.images[camera];
    });
    const words = $('words');
    words.textContent = '';
    if (!row) return;
    let max = 0;
    ep.keys.forEach((k, i) => { if (k.kind !== 'image') max = Math.max(max, row[i]); });
    ep.keys.forEach((k, i) => {
      if (k.kind === 'image' || k.padding) return;
      const span = document.createElement('span');
      span.textContent = k.kind === 'state' ? '[state]' : k.piece;
      span.title = (100 * row[i]).toFixed(2) + ' %';
      span.style.background = `rgba(255, 60, 0, ${max > 0 ? (0.8 * row[i] / max).toFixed(3) : 0})`;
      words.appendChild(span);
    });
  }

  // ---- plots ------------------------------------------------------------------------------------------------
  function linePlot(canvas, xs, series, markFrom, markTo) {
    const ctx = canvas.getContext('2d'), W = canvas.width, H = canvas.height, pad = 28;
    ctx.clearRect(0, 0, W, H);
    let lo = Infinity, hi = -Infinity;
    series.forEach((ys) => ys.forEach((y) => { lo = Math.min(lo, y); hi = Math.max(hi, y); }));
    if (!(hi > lo)) hi = lo + 1;
    const x0 = xs[0], x1 = xs[xs.length - 1] || 1;
    const px = (x) => pad + (W - pad - 4) * (x - x0) / (x1 - x0 || 1), py = (y) => H - pad + (pad + 4 - H) * (y - lo) / (hi - lo);
    ctx.fillStyle = 'rgba(255, 160, 0, 0.25)';
    ctx.fillRect(px(markFrom), 4, Math.max(2, px(markTo) - px(markFrom)), H - pad - 4);
    const colours = ['#0072b2', '#e69f00', '#009e73', '#cc79a7', '#56b4e9', '#d55e00'];
    series.forEach((ys, s) => {
      ctx.strokeStyle = colours[s % colours.length];
      ctx.beginPath();
      ys.forEach((y, i) => (i ? ctx.lineTo(px(xs[i]), py(y)) : ctx.moveTo(px(xs[i]), py(y))));
      ctx.stroke();
    });
    ctx.fillStyle = '#333';
    ctx.fillText(hi.toPrecision(3), 2, 12);
    ctx.fillText(lo.toPrecision(3), 2, H - pad);
    ctx.fillText(x0.toFixed(1) + ' s', pad, H - 8);
    ctx.fillText(x1.toFixed(1) + ' s', W - 40, H - 8);
  }
  function drawPlots() {
    const ep = state.episode, tr = ep.trajectory;
    const from = ep.chunks[state.chunk].time;
    const next = ep.chunks[state.chunk + 1];
    const to = next ? next.time : tr.time[tr.time.length - 1];
    linePlot($('height'), tr.time, [tr.ee_z], from, to);
    const joints = tr.actions.length ? tr.actions[0].map((_, j) => tr.actions.map((a) => a[j])) : [];
    linePlot($('actions'), tr.time, joints, from, to);
  }
  function draw() {
    const ep = state.episode;
    const chunk = ep.chunks[state.chunk];
    $('frame-label').textContent = `chunk ${chunk.index} of ${ep.chunks.length}, t = ${chunk.time} s` +
      ` · seed ${ep.seed} · ${ep.success ? 'success' : 'no success'} · "${ep.task}"`;
    drawCameras();
    drawPlots();
  }
  function fillLayerControls() {
    const ep = state.episode, stream = $('stream').value;
    for (const id of ['layer', 'head', 'query']) $(id).textContent = '';
    for (let l = 0; l < ep.layers[stream]; ++l) option($('layer'), l, String(l));
    option($('head'), 'mean', 'mean');
    for (let h = 0; h < ep.heads[stream]; ++h) option($('head'), h, String(h));
    ep.queries[stream].forEach((q, i) => option($('query'), i, q));
  }
  let wanted = -1;  // the episode asked for last: a slower load of an earlier choice must not overwrite it
  async function showEpisode(i) {
    wanted = i;
    const entry = state.index.episodes[i];
    const episode = await loadEpisode(entry);
    if (wanted !== i) return;
    if (!episode.chunks.length) { $('frame-label').textContent = entry.script + ': no chunk was recorded'; return; }
    state.entry = entry;
    state.episode = episode;
    state.chunk = Math.min(state.chunk, state.episode.chunks.length - 1);
    $('frame').max = state.episode.chunks.length - 1;
    $('frame').value = state.chunk;
    fillLayerControls();
    draw();
  }

  // ---- neurons and features -----------------------------------------------------------------------------------
  // The conditions that switched a set on (run.json's interventions); a study without run.json matches by name.
  function steeringOf(matches) {
    const out = [];
    for (const study of state.index.steering)
      for (const c of study.conditions)
        if (c.sets ? c.sets.some(matches) : matches(c.name))
          out.push(`${study.study}: ${c.name} Δ ${c.delta_cm === undefined ? '–' : c.delta_cm + ' cm'}` +
                   `${c.p === undefined ? '' : ' (p ' + c.p + ')'}, ${c.successes}/${c.rollouts}`);
    return out.join('; ');
  }
  let tableRows = [];
  function buildTable() {
    tableRows = [];
    for (const n of state.index.neurons) {
      const where = n.kind === 'direction' ? `${n.channels} channels` : `${n.stream} ${n.layer}:${n.index}`;
      tableRows.push({ kind: n.kind, set: n.set, where, tokens: n.note, numbers: '', steering: steeringOf((s) => s === n.set),
                       figures: [], text: [n.kind, n.set, n.note, n.stream].join(' ').toLowerCase() });
    }
    for (const f of state.index.features) {
      const numbers = `freq ${f.frequency}, lift d ${f.lift_d}, high−low g ${f.high_low_g}, fast−slow g ${f.fast_slow_g}`;
      tableRows.push({ kind: 'sae feature', set: f.set, where: 'feature ' + f.index + ' (' + f.questions.join(', ') + ')',
                       // `vlascope sae steer` names a feature's set <prefix><feature> (sae_726, sae_vlm_726, …)
                       tokens: f.tokens.join(' '), numbers, steering: steeringOf((s) => /^sae_/.test(s) && s.endsWith('_' + f.index)),
                       figures: f.figures,
                       text: ['sae feature', f.set, f.tokens.join(' '), f.questions.join(' '), 'feature ' + f.index].join(' ').toLowerCase() });
    }
  }
  function renderTable() {
    const q = $('search').value.trim().toLowerCase();
    const terms = q.split(/\s+/).filter((t) => t);
    const match = tableRows.filter((r) => terms.every((t) => r.text.includes(t)));
    const body = $('neurons').tBodies[0];
    body.textContent = '';
    const limit = 300;  // the rest stays one search away: a page of thousands of rows scrolls badly
    for (const r of match.slice(0, limit)) {
      const tr = body.insertRow();
      for (const v of [r.kind, r.set, r.where, r.tokens, r.numbers, r.steering]) tr.insertCell().textContent = v;
      tr.cells[3].className = 'tokens';
      const links = tr.insertCell();
      r.figures.forEach((f) => { const a = document.createElement('a'); a.href = f; a.textContent = 'frames '; links.appendChild(a); });
    }
    $('match-count').textContent = `${match.length} of ${tableRows.length}` + (match.length > limit ? ` (first ${limit} shown)` : '');
  }

  // ---- steering and patching studies ------------------------------------------------------------------------
  // One study: its title, a table (a row of cells per entry; undefined shows as –) and its plots, each linked.
  function studyBlock(title, headers, rows, plots) {
    const div = document.createElement('div');
    div.className = 'study';
    const h = document.createElement('h3');
    h.textContent = title;
    const table = document.createElement('table');
    table.createTHead().insertRow().append(...headers
      .map((t) => { const th = document.createElement('th'); th.textContent = t; return th; }));
    const body = table.createTBody();
    for (const cells of rows) {
      const tr = body.insertRow();
      for (const v of cells) tr.insertCell().textContent = v === undefined ? '–' : v;
    }
    div.append(h, table);
    for (const p of plots) {
      const a = document.createElement('a');
      a.href = p;
      const img = document.createElement('img');
      img.loading = 'lazy';
      img.src = p;
      img.alt = p;
      a.appendChild(img);
      div.appendChild(a);
    }
    return div;
  }

  function renderSteering() {
    const box = $('steering');
    if (!state.index.steering.length) { box.textContent = 'No steering study in this folder.'; return; }
    for (const study of state.index.steering)
      box.appendChild(studyBlock(study.study, ['condition', 'mean height (cm)', 'Δ vs baseline (cm)', 'Welch p', 'successes'],
        study.conditions.map((c) => [c.name, c.mean_height_cm, c.delta_cm, c.p, `${c.successes}/${c.rollouts}`]), study.plots));
  }

  function renderPatching() {
    const box = $('patching');
    if (!state.index.patching.length) { box.textContent = 'No patching study in this folder.'; return; }
    for (const study of state.index.patching)
      box.appendChild(studyBlock(`${study.study}: "${study.source}" written into "${study.target}"`,
        ['patched', 'share moved', 'random patch', 'remaining'],
        study.effects.map((e) => [e.spec, e.moved, e.random_moved, e.remaining]), study.plots));
  }

  async function start() {
    await loadScript('explorer_index.js');
    if (!state.index) throw new Error('explorer_index.js did not hand over its data');
    $('root').textContent = state.index.root;
    buildTable();
    renderTable();
    renderSteering();
    renderPatching();
    $('search').addEventListener('input', renderTable);
    if (state.index.episodes.length) {
      state.index.episodes.forEach((e, i) => option($('episode'), i, `${e.study} · episode ${e.episode}`));
      const report = (e) => { $('status').textContent = 'error: ' + e.message; console.error(e); };
      $('episode').addEventListener('change', () => showEpisode(+$('episode').value).catch(report));
      $('frame').addEventListener('input', () => { state.chunk = +$('frame').value; draw(); });
      $('stream').addEventListener('change', () => { fillLayerControls(); draw(); });
      for (const id of ['layer', 'head', 'query']) $(id).addEventListener('change', draw);
      await showEpisode(0);
    } else {
      $('no-episodes').hidden = false;
      $('episode-controls').hidden = true;
    }
    window.vlascopeReadyMs = performance.now();
    document.body.dataset.ready = 'yes';
  }
  start().catch((e) => { $('status').textContent = 'error: ' + e.message; console.error(e); });
})();
