#!/usr/bin/env node
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, UsageError, messageOf } from '../lib/errors.js';
import { parseDuration } from '../lib/config/units.js';
import { VERSION } from '../lib/version.js';
import { STORE_DIR } from '../lib/targets/layout.js';
import { monitorHelp } from './cli.js';
import { colorEnabled } from '../lib/log.js';

/** Monitoring-plugin exit codes (Nagios/Icinga): the only place the monitor maps results to exit codes. */
const EXIT = { OK: 0, WARNING: 1, CRITICAL: 2, UNKNOWN: 3 } as const;

const HELP = monitorHelp();

async function main(argv: string[]): Promise<number> {
  let values;
  let stores: string[];
  try {
    const parsed = parseArgs({ args: argv, allowPositionals: true, strict: true, options: {
      config: { type: 'string' }, format: { type: 'string' }, out: { type: 'string' }, json: { type: 'boolean' },
      stale: { type: 'string' }, 'warn-age': { type: 'string' }, 'crit-age': { type: 'string' },
      email: { type: 'string' }, smtp: { type: 'string' }, help: { type: 'boolean', short: 'h' }, version: { type: 'boolean' },
      'log-level': { type: 'string' },
    } });
    values = parsed.values;
    stores = parsed.positionals;
    if (values.help) { process.stdout.write(HELP); return EXIT.OK; }
    if (values.version) { process.stdout.write(`${VERSION}\n`); return EXIT.OK; }
    const format = values.format ?? (values.json ? 'json' : 'text');
    if (!['text', 'json', 'html', 'prometheus'].includes(format)) throw new UsageError(`--format: expected text, json, html or prometheus, got ${JSON.stringify(format)}`);
    if (!!values.email !== !!values.smtp) throw new UsageError('--email and --smtp go together');
    const { loadConfig } = await import('../lib/config/load.js');
    let config;
    try {
      config = await loadConfig({ file: values.config });
    } catch (err) {
      if (values.config || stores.length === 0 || !(err instanceof ConfigError) || !/no config found/.test(err.message)) throw err;
    }
    if (stores.length === 0 && config) {
      // targets whose base is a path here hold the shipped stores (of this host, and of others shipped there)
      stores = [config.store, ...config.targets.filter((t) => t.path).map((t) => path.join(t.path!, STORE_DIR))]
        .filter((s, i) => i === 0 || fs.existsSync(s));
    }
    const dur = (flag: string, v: string | undefined, dflt: number) => {
      if (v === undefined) return dflt;
      const ms = parseDuration(v);
      if (ms === undefined) throw new UsageError(`--${flag}: expected a duration like "15m", "1h", "24h", got ${JSON.stringify(v)}`);
      return ms;
    };
    const t = {
      staleMs: dur('stale', values.stale, config?.monitor.staleMs ?? 3_600_000),
      warnAgeMs: dur('warn-age', values['warn-age'], config?.monitor.warnAgeMs ?? 3_600_000),
      critAgeMs: dur('crit-age', values['crit-age'], config?.monitor.critAgeMs ?? 86_400_000),
      scrubEveryMs: config?.verify.everyMs ?? 30 * 86_400_000,
    };
    const { findStores, readHosts } = await import('../lib/monitor/discover.js');
    const { buildReport } = await import('../lib/monitor/model.js');
    const render = await import('../lib/monitor/render.js');
    const found = findStores(stores);
    const { hosts, unknown } = await readHosts(found.stores, t);
    const report = buildReport(hosts, [...found.unknown, ...unknown], t);
    const toTty = !values.out && colorEnabled(process.stdout.isTTY === true);
    const text = format === 'json' ? render.renderJson(report) : format === 'html' ? render.renderHtml(report)
      : format === 'prometheus' ? render.renderPrometheus(report) : render.renderText(report, toTty);
    if (values.out) {
      // write then rename: node_exporter's textfile collector must never read a half-written file
      const tmp = `${values.out}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, text);
      fs.renameSync(tmp, values.out);
    } else process.stdout.write(text);
    if (values.email) {
      const { sendReport } = await import('../lib/monitor/email.js');
      await sendReport(report, values.email, values.smtp!);
    }
    return EXIT[report.status];
  } catch (err) {
    if (err instanceof UsageError) process.stderr.write(`replica-monitor: ${err.message}\nrun \`replica-monitor --help\` for usage\n`);
    else if (err instanceof ConfigError) process.stderr.write(`${err.message}\n`);
    else process.stderr.write(`replica-monitor: ${messageOf(err)}\n`);
    return EXIT.UNKNOWN;
  }
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
