/**
 * Keyboard navigation and task search, as plain browser script shared by the page and the unit tests (which run
 * this very text in a VM context). Defines `ehrNav`; no DOM access except `isTypingTarget`'s look at an element.
 */
export const VIEWER_NAV_JS = String.raw`var ehrNav = (function () {
  'use strict';
  /** The id after (step 1) or before (step -1) current in ids; the first / last when current is not listed; null past either end. */
  function neighbour(ids, current, step) {
    if (!ids.length) return null;
    var i = ids.indexOf(current);
    if (i < 0) return step > 0 ? ids[0] : ids[ids.length - 1];
    var j = i + step;
    return j >= 0 && j < ids.length ? ids[j] : null;
  }
  /** The task a search names: the id itself (any case, spaces ignored), else the first id starting with it; null if none. */
  function findTask(ids, query) {
    var q = String(query || '').replace(/\s+/g, '').toLowerCase();
    if (!q) return null;
    for (var i = 0; i < ids.length; i++) if (ids[i].toLowerCase() === q) return ids[i];
    for (var k = 0; k < ids.length; k++) if (ids[k].toLowerCase().indexOf(q) === 0) return ids[k];
    return null;
  }
  /** While typing, jump as soon as the text is a whole id that no other id extends (task5_2 waits: task5_21 exists). */
  function jumpWhileTyping(ids, query) {
    var q = String(query || '').replace(/\s+/g, '').toLowerCase();
    var hit = null;
    for (var i = 0; i < ids.length; i++) {
      var id = ids[i].toLowerCase();
      if (id === q) hit = ids[i];
      else if (id.indexOf(q) === 0) return null;
    }
    return hit;
  }
  /** True for an element that takes typed text (inputs, selects, text areas, editable content). */
  function isTypingTarget(el) {
    if (!el || !el.tagName) return false;
    var t = el.tagName.toUpperCase();
    return t === 'INPUT' || t === 'TEXTAREA' || t === 'SELECT' || !!el.isContentEditable;
  }
  /** What a key press means: 'next' (j, →), 'prev' (k, ←), 'search' (/); null for anything else, with a modifier, or while typing. */
  function keyAction(key, mods, typing) {
    if (typing || mods) return null;
    if (key === 'j' || key === 'ArrowRight') return 'next';
    if (key === 'k' || key === 'ArrowLeft') return 'prev';
    if (key === '/') return 'search';
    return null;
  }
  return { neighbour: neighbour, findTask: findTask, jumpWhileTyping: jumpWhileTyping, isTypingTarget: isTypingTarget, keyAction: keyAction };
})();`;

/** The viewer's single page: inline CSS and script; every piece of run data is inserted as text, never as HTML. */
export const VIEWER_PAGE = String.raw`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>ehrgym viewer</title>
<style>
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#f6f8fa;--ok:#1a7f37;--okbg:#2da44e;--bad:#cf222e;--badbg:#e5534b;--accent:#0969da}
*{box-sizing:border-box}
body{margin:0;font:14px/1.5 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:var(--fg);background:#fff}
header{background:#24292f;color:#fff;padding:14px 28px;display:flex;align-items:baseline;gap:16px}
header h1{margin:0;font-size:18px;font-weight:600}
header a{color:#fff;text-decoration:none}
header .sub{color:#c9d1d9;font-size:13px}
main{padding:18px 28px 48px;max-width:1500px;margin:0 auto}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin-bottom:14px}
.card{border:1px solid var(--line);border-radius:8px;padding:10px 14px;min-width:210px}
.card .label{color:var(--muted);font-size:12px}
.card .big{font-size:24px;font-weight:600}
.card .sub{color:var(--muted);font-size:12px}
.toolbar{display:flex;flex-wrap:wrap;gap:14px;align-items:center;padding:10px 12px;background:var(--bg);border:1px solid var(--line);border-radius:8px;margin-bottom:14px}
.toolbar label{font-size:12px;color:var(--muted);display:flex;flex-direction:column;gap:2px}
.toolbar select{font:inherit;font-size:13px;padding:3px 6px;border:1px solid var(--line);border-radius:6px;background:#fff;min-width:140px}
#count{margin-left:auto;font-size:13px;color:var(--muted)}
.grid{display:grid;gap:18px}
.panel{border:1px solid var(--line);border-radius:8px;padding:10px 12px;min-width:0}
.panel h2{font-size:14px;margin:0 0 8px}
.famrow{display:flex;align-items:center;gap:8px;margin:3px 0}
.famrow .fam{width:56px;font-size:12px;color:var(--muted);flex:none}
.famrow .famsr{margin-left:auto;font-size:12px;color:var(--muted);flex:none;font-variant-numeric:tabular-nums}
.cells{display:flex;flex-wrap:wrap;gap:3px;flex:1;min-width:0}
.cell{width:22px;height:22px;border-radius:4px;font-size:10px;line-height:22px;text-align:center;color:#fff;cursor:pointer;text-decoration:none;font-variant-numeric:tabular-nums}
.cell.ok{background:var(--okbg)} .cell.bad{background:var(--badbg)} .cell.none{background:#d0d7de;cursor:default}
.cell.dim{opacity:.13}
.cell:hover{outline:2px solid #24292f}
.legend{font-size:12px;color:var(--muted);margin:8px 0 0}
.legend span{display:inline-block;width:10px;height:10px;border-radius:2px;margin:0 4px 0 10px;vertical-align:middle}
.traj{display:grid;gap:16px}
.col{min-width:0}
.pill{display:inline-block;border-radius:10px;padding:0 8px;font-size:12px;border:1px solid var(--line);background:var(--bg);margin-right:4px}
.pill.ok{color:var(--ok);border-color:#aceebb;background:#dafbe1}
.pill.bad{color:var(--bad);border-color:#ffcecb;background:#ffebe9}
.pill.beh{color:#9a6700;border-color:#f5e0a0;background:#fff8c5}
.verdict{border:1px solid var(--line);border-radius:8px;padding:10px 12px;margin-bottom:12px}
.verdict h3{margin:0 0 6px;font-size:14px}
.kv{font-size:12px;color:var(--muted)}
.kv code{color:var(--fg)}
table{border-collapse:collapse;font-size:12px;margin:6px 0;width:100%}
th,td{border:1px solid var(--line);padding:3px 6px;text-align:left;vertical-align:top}
th{background:var(--bg)}
td.pass{color:var(--ok);font-weight:600} td.fail{color:var(--bad);font-weight:600}
td code{white-space:pre-wrap;word-break:break-word}
td.check{white-space:nowrap}
.item{border:1px solid var(--line);border-radius:8px;margin:8px 0;overflow:hidden}
.item .head{background:var(--bg);padding:4px 10px;font-size:12px;color:var(--muted);display:flex;gap:8px;align-items:center;border-bottom:1px solid var(--line)}
.item.agent .head{background:#ddf4ff}
.item .body{padding:6px 10px}
pre{margin:0;font:12px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;white-space:pre-wrap;word-break:break-word}
pre.json{background:var(--bg);border:1px solid var(--line);border-radius:6px;padding:8px;max-height:420px;overflow:auto}
details summary{cursor:pointer;color:var(--accent);font-size:12px;margin:2px 0}
a{color:var(--accent)}
.back{display:inline-block;margin-bottom:10px}
.empty{color:var(--muted);padding:20px}
#search{margin-left:auto;font:inherit;font-size:13px;padding:3px 8px;border:1px solid #57606a;border-radius:6px;background:#fff;color:var(--fg);width:250px}
#search-msg{color:#ffb4ab;font-size:12px;min-width:0}
.instruction{border-left:3px solid var(--accent);background:var(--bg);padding:8px 12px;margin:0 0 12px;border-radius:0 6px 6px 0}
.instruction .label{font-size:12px;color:var(--muted)}
.instruction pre{font-size:13px}
.pager{display:flex;gap:12px;align-items:baseline;font-size:13px;margin:0 0 8px}
.pager .hint{color:var(--muted);font-size:12px}
.call{border-left:3px solid var(--accent);padding:2px 0 2px 8px;margin:6px 0}
.call.error{border-left-color:var(--bad)}
.call.skipped{opacity:.6}
.call-head{font-size:12px;color:var(--muted);display:flex;gap:6px;align-items:center;flex-wrap:wrap;margin-bottom:2px}
.call-head code{color:var(--fg);font-size:12px}
pre.assistant-text{border-left:3px solid #d0d7de;padding-left:8px;margin:2px 0 6px}
pre.tool-error{color:var(--bad)}
</style></head>
<body>
<header><h1><a href="#/">ehrgym viewer</a></h1><span class="sub" id="subtitle"></span><span id="search-msg" role="status"></span><input id="search" type="search" list="task-ids" autocomplete="off" spellcheck="false" placeholder="Go to task, e.g. task5_21  ( / )" aria-label="Go to task by id"><datalist id="task-ids"></datalist></header>
<main id="app"><p class="empty">Loading…</p></main>
<script>
${VIEWER_NAV_JS}
</script>
<script>
(function () {
  'use strict';
  var state = { runs: [], data: null, filters: { family: '', status: '', behaviour: '', verdict: '' } };
  var app = document.getElementById('app');

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    if (attrs) Object.keys(attrs).forEach(function (k) {
      if (k === 'text') e.textContent = attrs[k];
      else if (k === 'cls') e.className = attrs[k];
      else e.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
    return e;
  }
  function pct(x) { return (x * 100).toFixed(1) + '%'; }
  function getJson(url) {
    return fetch(url).then(function (r) { if (!r.ok) throw new Error(url + ': ' + r.status); return r.json(); });
  }
  function familyLabel(fam) {
    var n = state.data && state.data.familyNames ? state.data.familyNames[fam] : undefined;
    return n ? fam + ' — ' + n : fam;
  }
  function behaviourTitle(id) {
    var b = state.data.behaviours.filter(function (x) { return x.id === id; })[0];
    return b ? b.title : id;
  }

  function cards() {
    return el('div', { cls: 'cards' }, state.runs.map(function (r) {
      return el('div', { cls: 'card', 'data-run': String(r.id) }, [
        el('div', { cls: 'label', text: r.label + ' · ' + r.agent + ' · ' + (r.protocol || 'text') }),
        el('div', { cls: 'big', text: pct(r.successRate) }),
        el('div', { cls: 'sub', text: r.correct + '/' + r.total + ' · 95% CI ' + pct(r.ci95.low) + '–' + pct(r.ci95.high) }),
        el('div', { cls: 'sub', text: 'query ' + (r.queryTotal ? pct(r.querySR) : '—') + ' · action ' + (r.actionTotal ? pct(r.actionSR) : '—') }),
        r.tools ? el('div', { cls: 'sub tool-usage', text: r.tools.calls + ' tool calls · ' + (r.tools.unknownTool.calls + r.tools.badArguments.calls) + ' tool errors · ' +
          r.tools.parallelReplies + ' parallel · ' + (r.tools.recoverToolText ? r.tools.recovered.calls + ' recovered from text' : 'no recovery from text') }) : null
      ]);
    }));
  }

  function select(id, label, options, value) {
    var s = el('select', { id: id });
    options.forEach(function (o) {
      var opt = el('option', { value: o[0], text: o[1] });
      if (o[0] === value) opt.selected = true;
      s.appendChild(opt);
    });
    s.addEventListener('change', function () { state.filters[id.replace('f-', '')] = s.value; applyFilters(); });
    return el('label', null, [label, s]);
  }

  function matches(task, cell) {
    var f = state.filters;
    if (!cell) return false;
    if (f.family && task.family !== f.family) return false;
    if (f.status && cell.status !== f.status) return false;
    if (f.behaviour && cell.behaviours.indexOf(f.behaviour) < 0) return false;
    if (f.verdict === 'correct' && !cell.correct) return false;
    if (f.verdict === 'incorrect' && cell.correct) return false;
    if (f.verdict === 'differs') {
      var seen = {};
      task.runs.forEach(function (c) { if (c) seen[c.correct ? 'y' : 'n'] = true; });
      if (!(seen.y && seen.n)) return false;
    }
    return true;
  }

  function applyFilters() {
    var shown = 0, total = 0;
    document.querySelectorAll('.famrow').forEach(function (row) {
      row.style.display = state.filters.family && row.getAttribute('data-family') !== state.filters.family ? 'none' : '';
    });
    document.querySelectorAll('.cell[data-task]').forEach(function (c) {
      var task = state.byId[c.getAttribute('data-task')];
      var cell = task.runs[Number(c.getAttribute('data-run'))];
      var ok = matches(task, cell);
      c.classList.toggle('dim', !ok);
      total++; if (ok) shown++;
    });
    document.getElementById('count').textContent = shown + ' of ' + total + ' task results match';
    var q = [];
    Object.keys(state.filters).forEach(function (k) { if (state.filters[k]) q.push(k + '=' + encodeURIComponent(state.filters[k])); });
    history.replaceState(null, '', '#/' + (q.length ? '?' + q.join('&') : ''));
  }

  function gridPage(query) {
    var d = state.data;
    (query || '').split('&').forEach(function (kv) {
      var p = kv.split('='); if (p[0] && p[0] in state.filters) state.filters[p[0]] = decodeURIComponent(p[1] || '');
    });
    app.textContent = '';
    app.appendChild(cards());
    var f = state.filters;
    app.appendChild(el('div', { cls: 'toolbar' }, [
      select('f-family', 'Family', [['', 'All families']].concat(d.families.map(function (x) { return [x, familyLabel(x)]; })), f.family),
      select('f-status', 'Status', [['', 'All statuses']].concat(d.statuses.map(function (x) { return [x, x]; })), f.status),
      select('f-behaviour', 'Behaviour', [['', 'Any behaviour']].concat(d.behaviours.map(function (b) { return [b.id, b.title]; })), f.behaviour),
      select('f-verdict', 'Verdict', [['', 'All'], ['correct', 'Correct'], ['incorrect', 'Incorrect']].concat(d.runs.length > 1 ? [['differs', 'Differs between runs']] : []), f.verdict),
      el('span', { id: 'count' })
    ]));
    var grid = el('div', { cls: 'grid' });
    grid.style.gridTemplateColumns = 'repeat(' + d.runs.length + ', minmax(0, 1fr))';
    d.runs.forEach(function (label, ri) {
      var panel = el('div', { cls: 'panel', 'data-run': String(ri) }, [el('h2', { text: label })]);
      d.families.forEach(function (fam) {
        var cells = el('div', { cls: 'cells' });
        d.tasks.filter(function (t) { return t.family === fam; }).forEach(function (t) {
          var c = t.runs[ri];
          var num = t.id.indexOf('_') >= 0 ? t.id.slice(t.id.indexOf('_') + 1) : t.id;
          var a = el(c ? 'a' : 'span', {
            cls: 'cell ' + (c ? (c.correct ? 'ok' : 'bad') : 'none'), 'data-task': t.id, 'data-run': String(ri),
            'data-verdict': c ? (c.correct ? 'correct' : 'incorrect') : 'missing',
            title: t.id + (c ? ' · ' + c.status + ' · ' + (c.correct ? 'correct' : 'incorrect') + (c.behaviours.length ? ' · ' + c.behaviours.map(behaviourTitle).join(', ') : '') : ' · not in this run'),
            text: num
          });
          if (c) a.setAttribute('href', '#/task/' + encodeURIComponent(t.id));
          cells.appendChild(a);
        });
        var famTasks = d.tasks.filter(function (t) { return t.family === fam && t.runs[ri]; });
        var famOk = famTasks.filter(function (t) { return t.runs[ri].correct; }).length;
        panel.appendChild(el('div', { cls: 'famrow', 'data-family': fam }, [el('span', { cls: 'fam', text: fam, title: familyLabel(fam) }), cells, el('span', { cls: 'famsr', text: famOk + '/' + famTasks.length })]));
      });
      grid.appendChild(panel);
    });
    app.appendChild(grid);
    var legend = el('p', { cls: 'legend' });
    [['var(--okbg)', 'correct'], ['var(--badbg)', 'incorrect'], ['#d0d7de', 'not in run']].forEach(function (x) {
      var sw = el('span'); sw.style.background = x[0]; legend.appendChild(sw); legend.appendChild(document.createTextNode(x[1]));
    });
    legend.appendChild(document.createTextNode(' · Click a cell for its trajectory; j / → and k / ← step through the tasks matching the filters, / searches a task id.'));
    app.appendChild(legend);
    applyFilters();
  }

  function checksTable(checks) {
    if (!checks || !checks.length) return el('p', { cls: 'kv', text: 'The grader recorded no named checks.' });
    // clinical-suite checkpoints carry a failure class (lookup, decision, payload, protocol, budget)
    var classed = checks.some(function (c) { return !!c.class; });
    var head = classed ? ['Check', 'Class', 'Result', 'Expected', 'Actual', 'Note'] : ['Check', 'Result', 'Expected', 'Actual', 'Note'];
    var t = el('table', { cls: 'checks' }, [el('thead', null, [el('tr', null, head.map(function (h) { return el('th', { text: h }); }))])]);
    var tb = el('tbody');
    checks.forEach(function (c) {
      function v(x) { if (x === undefined) return ''; var one = JSON.stringify(x); return one.length <= 60 ? one : JSON.stringify(x, null, 2); }
      tb.appendChild(el('tr', { 'data-check': c.name }, [
        el('td', { cls: 'check' }, [el('code', { text: c.name })]),
        classed ? el('td', { text: c.class || '' }) : null,
        el('td', { cls: c.pass ? 'pass' : 'fail', text: c.pass ? 'pass' : 'fail' }),
        el('td', null, [el('code', { text: v(c.expected) })]),
        el('td', null, [el('code', { text: v(c.actual) })]),
        el('td', { text: c.note || '' })
      ]));
    });
    t.appendChild(tb);
    return t;
  }

  function itemView(it, tr, lastPost) {
    var head = el('div', { cls: 'head' }, [el('strong', { text: '#' + it.index + ' ' + it.role }), el('span', { text: it.kind })]);
    (it.findings || []).forEach(function (b) { head.appendChild(el('span', { cls: 'pill beh', text: behaviourTitle(b) })); });
    var body = el('div', { cls: 'body' });
    if (it.kind === 'prompt') {
      body.appendChild(el('details', null, [el('summary', { text: 'Prompt (' + it.content.length + ' characters)' }), el('pre', { text: it.content })]));
    } else if (it.kind === 'get-response') {
      var lines = it.body.split('\n').length;
      body.appendChild(el('details', { cls: 'get-response' }, [el('summary', { text: 'GET response — ' + lines + ' lines' + (it.json ? ', pretty-printed JSON' : '') }), el('pre', { cls: 'json', text: it.body })]));
    } else if (it.kind === 'get-error') {
      body.appendChild(el('pre', { text: it.content }));
    } else if (it.kind === 'POST') {
      body.appendChild(el('div', { cls: 'kv' }, ['POST ', el('code', { text: it.url || '' }), ' ', el('span', { cls: 'pill ' + (it.postAccepted ? 'ok' : 'bad'), text: it.postAccepted ? 'accepted' : 'rejected' })]));
      if (it.payload !== null) body.appendChild(el('pre', { cls: 'json post-payload', text: it.payload }));
      else body.appendChild(el('pre', { text: it.content }));
      if (it.index === lastPost) {
        body.appendChild(el('div', { cls: 'kv', text: 'Grader checks (what they compared):' }));
        body.appendChild(checksTable(tr.grade.checks));
      }
    } else {
      body.appendChild(el('pre', { text: it.content }));
    }
    return el('div', { cls: 'item ' + it.role, 'data-index': String(it.index), 'data-kind': it.kind }, [head, body]);
  }

  function callCount(n) { return n === 0 ? 'no tool call' : n === 1 ? '1 tool call' : n + ' tool calls in one reply'; }

  function toolResultView(c) {
    if (c.result === undefined || c.result === null) return null;
    var r = c.resultItem;
    if (r && r.kind === 'get-response') {
      var lines = r.body.split('\n').length;
      return el('details', { cls: 'get-response tool-result' }, [el('summary', { text: 'GET response — ' + lines + ' lines' + (r.json ? ', pretty-printed JSON' : '') }), el('pre', { cls: 'json', text: r.body })]);
    }
    if (c.result.length > 400) {
      return el('details', { cls: 'tool-result' }, [el('summary', { text: 'Tool result — ' + c.result.length + ' characters' }), el('pre', { cls: 'json', text: c.result })]);
    }
    return el('pre', { cls: 'tool-result' + (c.kind === 'tool-error' ? ' tool-error' : ''), text: c.result });
  }

  function toolCallView(c, tr, lastPost) {
    var head = el('div', { cls: 'call-head' }, [el('strong', { text: (c.turn !== undefined ? '#' + c.turn + ' ' : '') + 'tool call ' }), el('code', { cls: 'tool-name', text: c.name })]);
    if (c.kind === 'tool-error') head.appendChild(el('span', { cls: 'pill bad', text: 'tool error: ' + c.error }));
    if (c.kind === 'not-executed') head.appendChild(el('span', { cls: 'pill', text: 'not executed (after finish)' }));
    if (c.recovered) head.appendChild(el('span', { cls: 'pill', text: 'recovered from text' }));
    (c.findings || []).forEach(function (b) { head.appendChild(el('span', { cls: 'pill beh', text: behaviourTitle(b) })); });
    var box = el('div', { cls: 'call' + (c.kind === 'tool-error' ? ' error' : c.kind === 'not-executed' ? ' skipped' : ''), 'data-kind': c.kind, 'data-call-id': c.id }, [
      head,
      el('pre', { cls: 'json tool-args', text: c.pretty })
    ]);
    var a = c.actionItem;
    if (a && c.kind === 'GET') box.appendChild(el('div', { cls: 'kv action' }, ['GET ', el('code', { text: a.url || '' })]));
    if (a && c.kind === 'POST') {
      box.appendChild(el('div', { cls: 'kv action' }, ['POST ', el('code', { text: a.url || '' }), ' ', el('span', { cls: 'pill ' + (a.postAccepted ? 'ok' : 'bad'), text: a.postAccepted ? 'accepted' : 'rejected' })]));
    }
    if (a && c.kind === 'FINISH') box.appendChild(el('div', { cls: 'kv action' }, ['FINISH ', el('code', { text: a.result === null ? '' : a.result })]));
    var res = toolResultView(c);
    if (res) {
      box.appendChild(el('div', { cls: 'kv', text: (c.resultIndex !== undefined ? '#' + c.resultIndex + ' ' : '') + 'tool result' }));
      box.appendChild(res);
    }
    if (c.turn !== undefined && c.turn === lastPost) {
      box.appendChild(el('div', { cls: 'kv', text: 'Grader checks (what they compared):' }));
      box.appendChild(checksTable(tr.grade.checks));
    }
    return box;
  }

  function toolTurnView(turn, tr, lastPost) {
    var head = el('div', { cls: 'head' }, [el('strong', { text: (turn.turn !== undefined ? '#' + turn.turn + ' ' : '') + 'assistant (message ' + turn.message + ')' }), el('span', { text: callCount(turn.calls.length) })]);
    if (turn.calls.length > 1) head.appendChild(el('span', { cls: 'pill', text: 'parallel' }));
    (turn.findings || []).forEach(function (b) { head.appendChild(el('span', { cls: 'pill beh', text: behaviourTitle(b) })); });
    var body = el('div', { cls: 'body' });
    if (turn.calls.length === 0) body.appendChild(el('pre', { cls: 'assistant-text', text: turn.content ? turn.content : '(empty reply)' }));
    else if (turn.content && turn.content.trim()) body.appendChild(el('pre', { cls: 'assistant-text', text: turn.content }));
    turn.calls.forEach(function (c) { body.appendChild(toolCallView(c, tr, lastPost)); });
    return el('div', { cls: 'item agent tool-turn', 'data-message': String(turn.message), 'data-calls': String(turn.calls.length) }, [head, body]);
  }

  function trajectoryColumn(tr) {
    var col = el('div', { cls: 'col', 'data-run-label': tr.run });
    var g = tr.grade || {};
    var v = el('div', { cls: 'verdict' }, [
      el('h3', null, [tr.run + ' ', el('span', { cls: 'pill ' + (tr.correct ? 'ok' : 'bad'), id: '', text: tr.correct ? 'correct' : 'incorrect' }), el('span', { cls: 'pill', text: tr.status })]),
      el('div', { cls: 'kv' }, ['Answer ', el('code', { text: tr.result === null ? '—' : (typeof tr.result === 'string' ? tr.result : JSON.stringify(tr.result)) }),
        g.reference !== undefined ? ' · reference ' : '', g.reference !== undefined ? el('code', { text: JSON.stringify(g.reference) }) : null,
        g.branch ? ' · branch ' : '', g.branch ? el('code', { text: g.branch }) : null]),
      el('div', { cls: 'kv', text: tr.rounds + ' rounds' + (tr.promptTokens !== null ? ' · ' + tr.promptTokens + ' prompt / ' + tr.completionTokens + ' completion tokens' : '') }),
      tr.tools ? el('div', { cls: 'kv protocol', text: (tr.protocol || 'tools') + ' protocol' + (tr.tools.recoveredToolCalls ? ' · ' + tr.tools.recoveredToolCalls + ' tool calls recovered from text' : '') +
        (tr.tools.aligned ? '' : ' · the transcript does not match the history: shown from the messages') }) : null,
      g.exception ? el('div', { cls: 'kv' }, ['Grader exception ', el('code', { text: g.exception })]) : null,
      typeof g.score === 'number' ? el('div', { cls: 'kv checkpoints', text: 'Checkpoints: score ' + g.score.toFixed(3) + (g.failureClass ? ' · first failure: ' + g.failureClass : ' · all passed') }) : null,
      tr.findings.length ? el('div', { cls: 'behaviours' }, tr.findings.map(function (f) { return el('span', { cls: 'pill beh', title: f.evidence, text: behaviourTitle(f.behaviour) }); })) : null,
    ]);
    var lastPost = -1;
    tr.items.forEach(function (it) { if (it.kind === 'POST' && it.postAccepted) lastPost = it.index; });
    if (tr.tools) {
      var shown = false;
      tr.tools.turns.forEach(function (t) { t.calls.forEach(function (c) { if (c.turn === lastPost) shown = true; }); });
      if (!shown) lastPost = -1;
    }
    if (lastPost < 0) v.appendChild(checksTable(g.checks));
    else v.appendChild(el('div', { cls: 'kv', text: 'Grader checks: with the POST (history item ' + lastPost + ') below.' }));
    col.appendChild(v);
    if (tr.tools) {
      // tools / mcp: the prompt, then each reply as the model wrote it (calls, arguments, answers)
      if (tr.items.length && tr.items[0].kind === 'prompt') col.appendChild(itemView(tr.items[0], tr, lastPost));
      tr.tools.turns.forEach(function (t) { col.appendChild(toolTurnView(t, tr, lastPost)); });
    } else {
      tr.items.forEach(function (it) { col.appendChild(itemView(it, tr, lastPost)); });
    }
    return col;
  }

  /** The task ids the keys step through: those with a result matching the filters (all ids when none matches). */
  function navIds() {
    var ids = state.data.tasks.filter(function (t) { return t.runs.some(function (c) { return matches(t, c); }); }).map(function (t) { return t.id; });
    return ids.length ? ids : state.data.tasks.map(function (t) { return t.id; });
  }
  function currentTask() {
    var m = /^#\/task\/(.+)$/.exec(location.hash || '');
    return m ? decodeURIComponent(m[1]) : null;
  }
  function goTask(id) { location.hash = '#/task/' + encodeURIComponent(id); }

  function taskPage(id) {
    var task = state.byId[id];
    app.textContent = '';
    if (!task) { app.appendChild(el('p', { cls: 'empty', text: 'No such task.' })); return; }
    var q = [];
    Object.keys(state.filters).forEach(function (k) { if (state.filters[k]) q.push(k + '=' + encodeURIComponent(state.filters[k])); });
    app.appendChild(el('a', { cls: 'back', href: '#/' + (q.length ? '?' + q.join('&') : ''), text: '← all tasks' }));
    var ids = navIds();
    var prev = ehrNav.neighbour(ids, id, -1);
    var next = ehrNav.neighbour(ids, id, 1);
    var pos = ids.indexOf(id);
    app.appendChild(el('div', { cls: 'pager' }, [
      prev ? el('a', { id: 'prev-task', href: '#/task/' + encodeURIComponent(prev), text: '‹ ' + prev }) : el('span', { cls: 'hint', text: 'first' }),
      el('span', { id: 'task-pos', text: pos >= 0 ? (pos + 1) + ' of ' + ids.length : 'not matching the filters' }),
      next ? el('a', { id: 'next-task', href: '#/task/' + encodeURIComponent(next), text: next + ' ›' }) : el('span', { cls: 'hint', text: 'last' }),
      el('span', { cls: 'hint', text: 'k / ← previous · j / → next · / search' })
    ]));
    app.appendChild(el('h2', { id: 'task-title', text: id + ' (' + familyLabel(task.family) + ')' }));
    var instruction = el('div', { cls: 'instruction', id: 'task-instruction' });
    instruction.style.display = 'none';
    app.appendChild(instruction);
    var wrap = el('div', { cls: 'traj' });
    var idx = [];
    task.runs.forEach(function (c, i) { if (c) idx.push(i); });
    wrap.style.gridTemplateColumns = 'repeat(' + idx.length + ', minmax(0, 1fr))';
    app.appendChild(wrap);
    Promise.all(idx.map(function (i) { return getJson('/api/runs/' + i + '/tasks/' + encodeURIComponent(id)); })).then(function (trs) {
      if (currentTask() !== id) return;
      var withText = trs.filter(function (tr) { return typeof tr.instruction === 'string'; })[0];
      if (withText) {
        instruction.appendChild(el('div', { cls: 'label', text: 'Task instruction' }));
        instruction.appendChild(el('pre', { text: withText.instruction }));
        if (withText.context) instruction.appendChild(el('div', { cls: 'kv', text: 'Context: ' + withText.context }));
        instruction.style.display = '';
      }
      trs.forEach(function (tr) { wrap.appendChild(trajectoryColumn(tr)); });
      wrap.setAttribute('data-loaded', 'true');
    }).catch(function (e) { app.appendChild(el('p', { cls: 'empty', text: String(e) })); });
  }

  function route() {
    var h = location.hash || '#/';
    var m = /^#\/task\/(.+)$/.exec(h);
    if (m) taskPage(decodeURIComponent(m[1]));
    else gridPage(h.indexOf('?') >= 0 ? h.slice(h.indexOf('?') + 1) : '');
    window.scrollTo(0, 0);
  }

  function setupNavigation() {
    var search = document.getElementById('search');
    var msg = document.getElementById('search-msg');
    var list = document.getElementById('task-ids');
    state.data.tasks.forEach(function (t) { list.appendChild(el('option', { value: t.id })); });
    function ids() { return state.data.tasks.map(function (t) { return t.id; }); }
    function jump(id) { msg.textContent = ''; search.value = ''; search.blur(); goTask(id); }
    search.addEventListener('input', function () {
      msg.textContent = '';
      var id = ehrNav.jumpWhileTyping(ids(), search.value);
      if (id) jump(id);
    });
    search.addEventListener('keydown', function (e) {
      if (e.key === 'Enter') {
        var id = ehrNav.findTask(ids(), search.value);
        if (id) jump(id);
        else msg.textContent = 'no task ' + search.value.trim();
        e.preventDefault();
      } else if (e.key === 'Escape') {
        search.value = ''; msg.textContent = ''; search.blur();
      }
    });
    document.addEventListener('keydown', function (e) {
      var action = ehrNav.keyAction(e.key, e.ctrlKey || e.metaKey || e.altKey, ehrNav.isTypingTarget(e.target));
      if (!action) return;
      e.preventDefault();
      if (action === 'search') { search.focus(); search.select(); return; }
      var target = ehrNav.neighbour(navIds(), currentTask(), action === 'next' ? 1 : -1);
      if (target) goTask(target);
    });
  }

  Promise.all([getJson('/api/runs'), getJson('/api/tasks')]).then(function (res) {
    state.runs = res[0]; state.data = res[1]; state.byId = {};
    state.data.tasks.forEach(function (t) { state.byId[t.id] = t; });
    document.getElementById('subtitle').textContent = state.runs.map(function (r) { return r.label + ' (' + r.total + ' tasks)'; }).join(' · ');
    window.addEventListener('hashchange', route);
    setupNavigation();
    route();
  }).catch(function (e) { app.textContent = 'Could not load runs: ' + e; });
})();
</script>
</body></html>
`;
