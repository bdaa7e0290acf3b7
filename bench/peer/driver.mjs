// The peer of runstore's benchmark: @mastra/pg's experiments store, through the workload of
// runstore's Postgres rows. Run by bench/cases/peer.py on a fresh database of its own:
//   node driver.mjs '{"connectionString": "postgresql://…", "listRows": 100000, …}'
// Prints one JSON object on stdout, medians in µs; the store's own logging goes to stderr.
import { createRequire } from 'node:module';
import { PostgresStore } from '@mastra/pg';

console.log = console.info = console.debug = console.warn = console.error;
const { connectionString, listRows, samples, pageSamples, warmup } = JSON.parse(process.argv[2]);
const require = createRequire(import.meta.url);
const versions = { node: process.versions.node };
for (const name of ['@mastra/pg', '@mastra/core']) versions[name] = require(`${name}/package.json`).version;

const store = new PostgresStore({ id: 'runstore-bench-peer', connectionString });
await store.init(); // the tables and indexes of every domain
const experiments = await store.getStore('experiments');
const newRun = (totalItems) =>
  experiments.createExperiment({
    name: 'bench', datasetId: null, datasetVersion: null, targetType: null, targetId: null, totalItems,
  });

// The rows of runstore's benchmark (bench/data.py); the latency goes to metadata (no column).
function result(experimentId, n) {
  const failed = n % 50 === 49;
  const took = 250 + ((n * 37) % 1900);
  const startedAt = new Date(Date.parse('2026-11-24T08:00:00Z') + 10 * Math.floor(n / 2));
  const context = ['refund-policy', 'shipping-faq', `order-${n % 997}`];
  return {
    experimentId, itemId: `item-${String(n).padStart(7, '0')}`, itemDatasetVersion: null,
    input: { question: `Question ${n}: can order #${100000 + n} be refunded?`, context, locale: 'en-GB', turn: n % 7 },
    output: failed ? null : `Yes: order #${100000 + n} is within 30 days.`,
    groundTruth: { answer: 'yes', cites: ['refund-policy'], score: 0.75 },
    metadata: { latency: took + 0.125 },
    error: failed ? 'TimeoutError: target did not answer within 30 s' : null,
    startedAt, completedAt: new Date(startedAt.getTime() + took), retryCount: failed ? 1 : 0,
  };
}

// Seeding (not timed): the store has no bulk insert, so rows go straight into its table,
// 5,000 per statement, in the columns and encodings addExperimentResult writes.
const COLUMNS = 'id text, "experimentId" text, "itemId" text, "itemDatasetVersion" integer, ' +
  'input jsonb, output jsonb, "groundTruth" jsonb, metadata jsonb, error jsonb, "startedAt" timestamp, ' +
  '"completedAt" timestamp, "retryCount" integer, attempt integer, "createdAt" timestamp';
const names = COLUMNS.replace(/ (text|integer|jsonb|timestamp)/g, '');
const listRun = await newRun(listRows);
const seedStarted = performance.now();
for (let start = 0; start < listRows; start += 5000) {
  const rows = [];
  for (let n = start; n < Math.min(listRows, start + 5000); n++) {
    rows.push({ ...result(listRun.id, n), id: crypto.randomUUID(), attempt: 0, createdAt: new Date() });
  }
  await store.db.none(
    `INSERT INTO mastra_experiment_results (${names}) SELECT ${names} FROM jsonb_to_recordset($1::jsonb) AS r(${COLUMNS})`,
    [JSON.stringify(rows)],
  );
}
await store.db.none('VACUUM ANALYZE mastra_experiment_results');
const seedSeconds = (performance.now() - seedStarted) / 1e3;

async function median(call, count = samples) {
  for (let i = 0; i < warmup; i++) await call(i);
  const times = [];
  for (let i = 0; i < count; i++) {
    const started = process.hrtime.bigint();
    await call(i);
    times.push(Number(process.hrtime.bigint() - started) / 1e3);
  }
  times.sort((a, b) => a - b);
  const middle = times.length >> 1;
  return times.length % 2 ? times[middle] : (times[middle - 1] + times[middle]) / 2;
}
const check = (ok, what) => {
  if (!ok) throw new Error(`check failed: ${what}`);
};
const page = (page) => experiments.listExperimentResults({ experimentId: listRun.id, pagination: { page, perPage: 100 } });
const last = Math.ceil(listRows / 100) - 1;

// A seeded row reads back like a written one. (Both read their times from the *Z mirror
// columns, which addExperimentResult leaves at their default, now().)
const addRun = await newRun(0);
let added = 0;
const written = await experiments.addExperimentResult(result(addRun.id, added++));
const first = await page(0);
check(first.pagination.total === listRows && first.results.length === 100, 'first page');
const seeded = first.results.find((row) => row.itemId === written.itemId);
check(Object.keys(seeded).sort().join() === Object.keys(written).sort().join(), 'keys');
for (const [key, value] of Object.entries(written)) {
  const same = JSON.stringify(seeded[key]) === JSON.stringify(value);
  check(same || ['id', 'experimentId', 'startedAt', 'completedAt', 'createdAt'].includes(key), key);
}

const operations = {
  create_run: await median(() => newRun(0)),
  add_result: await median(() => experiments.addExperimentResult(result(addRun.id, added++))),
  list_first_page: await median(async () => check((await page(0)).results.length === 100, 'first'), pageSamples),
  list_last_page: await median(async () => {
    check((await page(last)).results.length === listRows - last * 100, 'last page');
  }, pageSamples),
  get_run: await median(async () => check((await experiments.getExperimentById({ id: listRun.id })).id === listRun.id, 'get')),
  update_run: await median((i) => experiments.updateExperiment({ id: listRun.id, status: 'running', succeededCount: i })),
};
await store.close();
process.stdout.write(`${JSON.stringify({ versions, seedSeconds, operations })}\n`);
