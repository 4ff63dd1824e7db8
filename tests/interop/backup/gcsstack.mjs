// gcsstack.mjs - the `cloud` storage's stand-ins as a process, for restore_test.py: a metadata
// server (GCE_METADATA_HOST) handing out bearer tokens and a Cloud Storage XML API
// (GCS_ENDPOINT) accepting only those tokens (gcsfake.mjs). Prints one line
// "gcsstack ready gcs=PORT meta=PORT" once listening; then after every storage request
// "gcsstack requests=N unauthorized=M tokens=T badflavor=B" (M: refused, T: tokens issued).
// Runs until SIGTERM.
//   node gcsstack.mjs BUCKET
// SPDX-License-Identifier: GPL-3.0-or-later
import { startFakeGcs, startMetadata } from './gcsfake.mjs';
import { listen } from './s3check.mjs';

const [bucket] = process.argv.slice(2);
const meta = startMetadata();
const mport = await listen(meta.server);
const gcs = startFakeGcs(bucket, [meta.st.issued], {});
gcs.server.on('request', (req, res) => res.on('finish', () => {
  console.log(`gcsstack requests=${gcs.st.requests} unauthorized=${gcs.st.unauthorized} ` +
              `tokens=${meta.st.fetches} badflavor=${meta.st.badFlavor} ${req.method}`);
}));
const gport = await listen(gcs.server);
console.log(`gcsstack ready gcs=${gport} meta=${mport}`);
process.on('SIGTERM', () => {
  gcs.server.close();
  meta.server.close();
  process.exit(0);
});
