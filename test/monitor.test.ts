import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { describe, it, before, after } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { ROOT, age, cli, makeTree, mountTmpfs, rmTree, tmpDir, writeConfig } from './helpers.js';

const MONITOR = path.join(ROOT, 'dist/bin/replica-monitor.js');

function monitor(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [MONITOR, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = ''; let stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    c.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('replica-monitor on three real hosts: healthy, full target, stale agent', () => {
  let dir: string; let shared: string;
  const store = (h: string) => path.join(dir, h, '.replica');
  before(async () => {
    dir = tmpDir();
    shared = path.join(dir, 'backup-server');
    const full = path.join(dir, 'full');
    mountTmpfs(full, '1m');
    for (const host of ['alpha', 'beta', 'gamma']) {
      const src = path.join(dir, host, 'data');
      makeTree(src, 20, { maxBytes: 8192 });
      const targets = [{ name: 'server', url: shared }];
      if (host === 'beta') {
        for (let i = 0; i < 4; i++) { fs.writeFileSync(path.join(src, `big${i}.fits`), Buffer.alloc(400 << 10, i)); age(path.join(src, `big${i}.fits`)); }
        targets.push({ name: 'usb', url: full });
      }
      const cfg = writeConfig(path.join(dir, host), { host, sources: [src], targets });
      const r = await cli(['run', '--config', cfg]);
      assert.equal(r.code, host === 'beta' ? 1 : 0, r.stderr);
    }
    // gamma's agent stopped three hours ago: its store, and the copy it shipped, say so
    const old = new Date(Date.now() - 3 * 3600_000).toISOString();
    for (const m of [path.join(store('gamma'), 'meta.json'), path.join(shared, '.replica', 'gamma', 'meta.json')]) {
      const meta = JSON.parse(fs.readFileSync(m, 'utf8'));
      meta.heartbeatAt = old;
      fs.writeFileSync(m, JSON.stringify(meta));
    }
  });
  after(() => rmTree(dir));

  it('exit codes per host: OK 0, WARNING 1 (ENOSPC being retried), CRITICAL 2 (stale); all together 2', async () => {
    assert.equal((await monitor([store('alpha')])).code, 0);
    const beta = await monitor([store('beta')]);
    assert.equal(beta.code, 1, beta.stdout);
    assert.match(beta.stdout, /beta +WARNING/);
    assert.match(beta.stdout, /\[ENOSPC\] \d+ files, latest .*big\d\.fits: .*no space left on device/i);
    const gamma = await monitor([store('gamma')]);
    assert.equal(gamma.code, 2);
    assert.match(gamma.stdout, /gamma: CRITICAL: agent heartbeat is 180 min old/);
    const all = await monitor([path.join(shared, '.replica')]);
    assert.equal(all.code, 2);
    for (const [h, s] of [['alpha', 'OK'], ['beta', 'WARNING'], ['gamma', 'CRITICAL']]) assert.match(all.stdout, new RegExp(`^${h} +${s} `, 'm'));
  });

  it('readHosts: worker threads give exactly the report one thread gives (hosts seen twice, a broken store, the order kept)', async () => {
    const { readHosts } = await import('../dist/lib/monitor/discover.js');
    const broken = path.join(dir, 'broken');
    fs.mkdirSync(broken, { recursive: true });
    fs.writeFileSync(path.join(broken, 'meta.json'), '{not json');
    const shipped = fs.readdirSync(path.join(shared, '.replica')).sort().map((h) => path.join(shared, '.replica', h));
    const stores = [store('alpha'), broken, ...shipped, store('beta'), store('gamma')];
    const t = { staleMs: 3600_000, warnAgeMs: 3600_000, critAgeMs: 86400_000, scrubEveryMs: 30 * 86400_000 };
    const now = Date.now();
    const one = await readHosts(stores, t, now, 1);
    assert.deepEqual(one.hosts.map((h) => h.host).sort(), ['alpha', 'beta', 'gamma']);
    assert.deepEqual(one.unknown.map((u) => u.store), [broken]);
    for (const threads of [2, 3]) assert.deepEqual(await readHosts(stores, t, now, threads), one, `${threads} threads`);
  });

  it('thresholds: --stale wide enough makes gamma OK; --warn-age 0s flags unverified files', async () => {
    assert.equal((await monitor([store('gamma'), '--stale', '4h'])).code, 0);
    assert.equal((await monitor([store('beta'), '--warn-age', '0s', '--crit-age', '0s'])).code, 2);
  });

  it('a store path that does not exist is UNKNOWN (3); bad usage is UNKNOWN too', async () => {
    const r = await monitor([path.join(dir, 'nope')]);
    assert.equal(r.code, 3);
    assert.match(r.stdout, /UNKNOWN: .*nope/);
    assert.equal((await monitor([store('alpha'), '--format', 'xml'])).code, 3);
    assert.equal((await monitor([store('alpha'), '--stale', 'soon'])).code, 3);
  });

  it('json validates against docs/schemas/monitor.schema.json', async () => {
    const r = await monitor([path.join(shared, '.replica'), '--format', 'json']);
    const report = JSON.parse(r.stdout) as { hosts: any[]; status: string };
    const ajv = new Ajv2020({ allErrors: true, strict: false });
    (addFormats as unknown as (a: Ajv2020) => void)(ajv);
    ajv.addSchema(JSON.parse(fs.readFileSync(path.join(ROOT, 'docs/schemas/status.schema.json'), 'utf8')));
    const validate = ajv.compile(JSON.parse(fs.readFileSync(path.join(ROOT, 'docs/schemas/monitor.schema.json'), 'utf8')));
    assert.ok(validate(report), JSON.stringify(validate.errors));
    assert.deepEqual(report.hosts.map((h: { host: string; status: string }) => [h.host, h.status]), [['alpha', 'OK'], ['beta', 'WARNING'], ['gamma', 'CRITICAL']]);
    const usb = report.hosts[1].targets.find((t: { name: string }) => t.name === 'usb');
    assert.ok(usb.failedRetrying > 0 && usb.worst[0].class === 'ENOSPC');
    assert.equal(validate({ ...report, status: 'FINE' }), false);
  });

  it('prometheus output parses with a Prometheus text-format parser; --out writes the file whole', async () => {
    const out = path.join(dir, 'replica.prom');
    const r = await monitor([path.join(shared, '.replica'), '--format', 'prometheus', '--out', out]);
    assert.equal(r.code, 2);
    const families = parsePrometheusTextFormat(fs.readFileSync(out, 'utf8')) as { name: string; metrics: { labels?: Record<string, string>; value: string }[] }[];
    const fam = (n: string) => families.find((f) => f.name === n)!;
    assert.deepEqual(fam('replica_host_status').metrics.map((m) => [m.labels!.host, m.value]).sort(), [['alpha', '0'], ['beta', '1'], ['gamma', '2']]);
    assert.ok(Date.now() / 1000 - Number(fam('replica_heartbeat_timestamp_seconds').metrics.find((m) => m.labels!.host === 'gamma')!.value) > 3 * 3600 - 60);
    assert.ok(fam('replica_failed_files').metrics.some((m) => m.labels!.class === 'ENOSPC' && Number(m.value) > 0));
    // timestamps, not ages frozen in the file; a fully verified target has no "oldest unverified" series at all
    const oldest = fam('replica_oldest_unverified_timestamp_seconds').metrics;
    assert.ok(oldest.some((m) => m.labels!.host === 'beta'), 'the full target has an unverified file');
    assert.ok(!oldest.some((m) => m.labels!.host === 'alpha'), 'alpha is fully verified: no series, never 0');
    assert.equal(fs.readFileSync(out, 'utf8').match(/_age_seconds/), null);
    assert.equal(fs.readdirSync(dir).filter((f) => f.includes('.tmp')).length, 0);
  });

  it('html: one self-contained file; in headless Chromium the host rows and their colours are right', async () => {
    const out = path.join(dir, 'report.html');
    await monitor([path.join(shared, '.replica'), '--format', 'html', '--out', out]);
    const page = fs.readFileSync(out, 'utf8');
    assert.doesNotMatch(page, /(src|href)=["']?https?:/, 'no network resources');
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
    try {
      const p = await browser.newPage({ viewport: { width: 900, height: 500 } });
      await p.goto(`file://${out}`);
      assert.equal(await p.locator('#overall').textContent(), 'CRITICAL');
      const rows = await p.locator('#hosts tbody tr').evaluateAll((trs) => trs.map((tr) => [tr.children[0].textContent, tr.children[1].textContent, getComputedStyle(tr.children[1]).backgroundColor]));
      const colour = (h: string) => rows.find((r) => r[0] === h)![2];
      assert.equal(colour('alpha'), 'rgb(46, 125, 50)');
      assert.equal(colour('gamma'), 'rgb(198, 40, 40)');
      assert.ok(rows.some((r) => r[0] === 'beta' && r[1] === 'WARNING' && r[2] === 'rgb(249, 168, 37)'), 'beta/usb is amber');
      assert.ok(rows.some((r) => r[0] === 'beta' && r[1] === 'OK'), 'beta/server is fine');
      await p.locator('#hosts th', { hasText: 'status' }).click(); // sortable: ascending by status
      assert.equal(await p.locator('#hosts tbody tr').first().locator('td').nth(1).textContent(), 'OK');
      fs.mkdirSync(path.join(ROOT, 'test-output'), { recursive: true });
      await p.screenshot({ path: path.join(ROOT, 'test-output', 'monitor-report.png'), fullPage: true });
      await p.setViewportSize({ width: 380, height: 700 }); // a phone
      assert.ok(await p.evaluate(() => document.documentElement.scrollWidth <= 420), 'readable on a phone without sideways scrolling');
    } finally {
      await browser.close();
    }
  });

  it('--email sends the report (HTML and text, subject starting with the status) through SMTP', async () => {
    const { SMTPServer } = await import('smtp-server');
    const { simpleParser } = await import('mailparser');
    const received: { subject?: string; html?: string | false; text?: string; to?: unknown }[] = [];
    const server = new SMTPServer({
      authOptional: true, disabledCommands: ['STARTTLS'],
      onData(stream: NodeJS.ReadableStream, _s: unknown, cb: (e?: Error) => void) { simpleParser(stream).then((m) => { received.push(m as never); cb(); }, cb); },
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.server.address() as { port: number }).port;
    try {
      const r = await monitor([path.join(shared, '.replica'), '--email', 'ops@example.org', '--smtp', `smtp://127.0.0.1:${port}`]);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(received.length, 1);
      assert.match(received[0].subject!, /^CRITICAL: replica backup report, 3 hosts/);
      assert.match(String(received[0].html), /<table id="hosts">/);
      assert.match(received[0].text!, /gamma +CRITICAL/);
      const bad = await monitor([store('alpha'), '--email', 'ops@example.org', '--smtp', 'smtp://127.0.0.1:1']);
      assert.equal(bad.code, 3);
      assert.match(bad.stderr, /ECONNREFUSED|connect/);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

it('a copy pending on a tape target is late only after the target\'s maxWait (waitMs): no age warning while it waits for its tape file', async () => {
  const { hostReport } = await import('../dist/lib/monitor/model.js');
  const now = Date.now();
  const meta = (waitMs?: number) => ({
    formatVersion: 1, host: 'srv', agentVersion: '0', shards: 1, createdAt: new Date(now - 86400_000).toISOString(), heartbeatAt: new Date(now).toISOString(), sources: ['/srv'],
    targets: { disk: { url: '/d' }, lto: { url: 'tape:///e', ...(waitMs === undefined ? {} : { waitMs }) } },
  });
  const settled = now - 2 * 3600_000; // two hours ago: verified on the disk, waiting for a tape file
  const records = () => [['/srv/a', { z: 1, m: settled, f: settled, s: settled, h: '0123456789abcdef', t: { disk: `v ${settled} ${settled}`, lto: 'p' } }]] as [string, never][];
  const t = { staleMs: 3600_000, warnAgeMs: 3600_000, critAgeMs: 86400_000, scrubEveryMs: 30 * 86400_000 };
  const waiting = hostReport('s', meta(86400_000) as never, records, t, now);
  assert.equal(waiting.status, 'OK', waiting.problems.join('; '));
  // waiting is not late, but it is unverified all the same: its age and "verified up to" say so (never an age
  // below zero, never a time to come)
  const lto = waiting.targets.find((x: { name: string }) => x.name === 'lto')!;
  assert.deepEqual([lto.oldestUnverifiedAgeMs, lto.verifiedUpTo], [2 * 3600_000, new Date(settled).toISOString()]);
  const late = hostReport('s', meta() as never, records, t, now);
  assert.equal(late.status, 'WARNING');
  assert.match(late.problems.join('; '), /lto: a file has been unverified for 120 min/);
  const past = hostReport('s', meta(3600_000 - 1) as never, records, t, now); // waited 1 h past a maxWait just under 1 h
  assert.equal(past.status, 'WARNING');
  assert.match(past.problems.join('; '), /lto: a file has been unverified for 120 min/, 'the message says how long it has been unverified in all');
});
