// Open-loop load from a separate process, so the generator does not share an event loop with the
// system under test. argv: url path key ratePerSecond durationMs. Prints a JSON summary at the end.
import { Pool } from 'undici';

const [url, path, key, rateText, durationText] = process.argv.slice(2) as [string, string, string, string, string];
const rate = Number(rateText);
const duration = Number(durationText);
const pool = new Pool(url, { connections: 256 });
const body = JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] });
const byStatus: Record<string, number> = {};
const pending: Promise<void>[] = [];
const start = performance.now();
let sent = 0;
while (performance.now() - start < duration) {
  const due = Math.floor(((performance.now() - start) / 1000) * rate);
  while (sent < due) {
    sent++;
    pending.push(
      pool
        .request({ method: 'POST', path, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body })
        .then(async (res) => {
          await res.body.dump();
          byStatus[res.statusCode] = (byStatus[res.statusCode] ?? 0) + 1;
        })
        .catch(() => {
          byStatus['error'] = (byStatus['error'] ?? 0) + 1;
        }),
    );
  }
  await new Promise((r) => setTimeout(r, 2));
}
await Promise.all(pending);
await pool.close();
process.stdout.write(`${JSON.stringify({ sent, byStatus })}\n`);
