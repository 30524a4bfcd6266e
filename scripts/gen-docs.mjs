// Regenerate what is derived from the command table (src/bin/cli.ts): docs/cli.md and the man pages.
// `npm run docs` after changing a command or option; test/cli.test.ts fails while they are out of date.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MAN_DATE, cliMarkdown, manPage, monitorManPage } from '../dist/bin/cli.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
fs.mkdirSync(path.join(root, 'man'), { recursive: true });
fs.writeFileSync(path.join(root, 'docs/cli.md'), cliMarkdown());
fs.writeFileSync(path.join(root, 'man/replica.1'), manPage(MAN_DATE));
fs.writeFileSync(path.join(root, 'man/replica-monitor.1'), monitorManPage(MAN_DATE));
console.log('wrote docs/cli.md, man/replica.1, man/replica-monitor.1');
