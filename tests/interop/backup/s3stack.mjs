// s3stack.mjs - s3rver (a real S3-compatible server, from npm) with a bucket, behind the
// SigV4-checking proxy of s3check.mjs, as a process for tests in other languages
// (restore_test.py). Prints one line "s3stack ready proxy=PORT direct=PORT" once listening;
// every request then logs "s3stack checked=N rejected=M" (M: requests refused: a bad
// signature). Commands on stdin, one a line: "refuse-puts on" / "refuse-puts off" (correctly
// signed PUTs answered 503 while on: a backup that cannot be uploaded), each answered with
// "s3stack refuse-puts on|off". Runs until SIGTERM.
//   node s3stack.mjs DIR BUCKET ACCESS_KEY SECRET
// SPDX-License-Identifier: GPL-3.0-or-later
import { createRequire } from 'node:module';
import readline from 'node:readline';

import { listen, startProxy } from './s3check.mjs';

const require = createRequire(import.meta.url);
const S3rver = require(process.env.S3RVER_MODULE || 's3rver');
const [dir, bucket, accessKey, secret] = process.argv.slice(2);

const s3 = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: dir,
                        configureBuckets: [{ name: bucket }] });
const { port: s3Port } = await s3.run();
const proxy = startProxy(s3Port, { [accessKey]: secret });
proxy.server.on('request', (req, res) => res.on('finish', () => {
  const r = proxy.stats.reasons;
  console.log(`s3stack checked=${proxy.stats.checked} rejected=${proxy.stats.rejected} ` +
              `refused=${proxy.stats.refused} ${req.method}` +
              (r.length ? ' last=' + r[r.length - 1] : ''));
}));
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const m = /^refuse-puts (on|off)$/.exec(line.trim());
  if (!m) return;
  proxy.faults.put = m[1] === 'on';
  console.log(`s3stack refuse-puts ${m[1]}`);
});
const pport = await listen(proxy.server);
console.log(`s3stack ready proxy=${pport} direct=${s3Port}`);
process.on('SIGTERM', async () => {
  proxy.server.close();
  await s3.close();
  process.exit(0);
});
