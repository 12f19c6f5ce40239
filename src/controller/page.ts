/**
 * The controller's own page at `/`: the configuration it serves and every node with the version it
 * runs, its health and why it refused a snapshot, refreshed every second from the admin API (the
 * token of `?token=` goes along as a Bearer header). Self-contained: no assets, no internet.
 */
export const NODES_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ModelGuard controller</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  :root { color-scheme: light dark; font: 14px/1.4 system-ui, sans-serif; }
  body { margin: 24px; }
  h1 { font-size: 20px; margin: 0 0 4px; }
  .muted { opacity: .7; }
  table { border-collapse: collapse; margin-top: 16px; min-width: 720px; }
  th, td { text-align: left; padding: 6px 12px; border-bottom: 1px solid #8884; }
  td.num { font-variant-numeric: tabular-nums; }
  .ok { color: #1a7f37; } .bad { color: #cf222e; } .warn { color: #9a6700; }
  pre { white-space: pre-wrap; color: #cf222e; }
</style></head>
<body data-updates="0">
<h1>ModelGuard controller</h1>
<div class="muted">configuration <span id="config-version">–</span> <span id="config-hash"></span> from <span id="config-source"></span></div>
<pre id="config-error" hidden></pre>
<table><thead><tr><th>node</th><th>role</th><th>apps</th><th>runs</th><th>state</th><th>heartbeat</th><th>last refusal</th></tr></thead>
<tbody id="nodes"></tbody></table>
<script>
const token = new URLSearchParams(location.search).get('token');
const headers = token ? { authorization: 'Bearer ' + token } : {};
const cell = (text, cls) => { const td = document.createElement('td'); td.textContent = text; if (cls) td.className = cls; return td; };
async function get(path) { const r = await fetch(path, { headers, cache: 'no-store' }); if (!r.ok) throw new Error(path + ': ' + r.status); return r.json(); }
async function tick() {
  try {
    const [cfg, list] = await Promise.all([get('/api/v1/config'), get('/api/v1/nodes')]);
    document.getElementById('config-version').textContent = cfg.version === undefined ? '–' : 'v' + cfg.version;
    document.getElementById('config-hash').textContent = cfg.hash ? '(' + cfg.hash.slice(0, 12) + ')' : '';
    document.getElementById('config-source').textContent = cfg.source;
    const err = document.getElementById('config-error');
    err.hidden = !cfg.error; err.textContent = cfg.error ? 'refused at ' + cfg.error.at + ':\\n' + cfg.error.message : '';
    const rows = list.nodes.map((n) => {
      const tr = document.createElement('tr'); tr.dataset.node = n.name;
      tr.append(cell(n.name), cell(n.role), cell(n.apps.length ? n.apps.join(', ') : (n.role === 'proxy' ? 'all' : '')),
        cell(n.applied ? 'v' + n.applied.version : '–', 'num'),
        cell(!n.healthy ? 'silent' : n.upToDate ? 'current' : 'behind', !n.healthy ? 'bad' : n.upToDate ? 'ok' : 'warn'),
        cell((n.lastSeenMs / 1000).toFixed(1) + ' s ago', 'num'),
        cell(n.error ? 'v' + n.error.version + ': ' + n.error.message : ''));
      return tr;
    });
    document.getElementById('nodes').replaceChildren(...rows);
    document.body.dataset.updates = String(Number(document.body.dataset.updates) + 1);
  } catch (e) { document.getElementById('config-source').textContent = String(e); }
}
tick(); setInterval(tick, 1000);
</script></body></html>
`;
