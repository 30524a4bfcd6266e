// Regenerate what is derived from the command table (src/bin/cli.ts) and the config schema: docs/cli.md,
// docs/config.md and the man pages.
// `npm run docs` after changing a command or option; test/cli.test.ts fails while they are out of date.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MAN_DATE, cliMarkdown, completionScript, configMarkdown, manPage, monitorManPage } from '../dist/bin/cli.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
fs.mkdirSync(path.join(root, 'man'), { recursive: true });
fs.writeFileSync(path.join(root, 'docs/cli.md'), cliMarkdown());
const schema = JSON.parse(fs.readFileSync(path.join(root, 'docs/schemas/config.schema.json'), 'utf8'));
fs.writeFileSync(path.join(root, 'docs/config.md'), configMarkdown(schema, fs.readFileSync(path.join(root, 'replica.config.json'), 'utf8')));
fs.writeFileSync(path.join(root, 'man/replica.1'), manPage(MAN_DATE));
fs.writeFileSync(path.join(root, 'man/replica-monitor.1'), monitorManPage(MAN_DATE));
fs.mkdirSync(path.join(root, 'completions'), { recursive: true });
for (const [shell, file] of [['bash', 'replica.bash'], ['zsh', '_replica'], ['fish', 'replica.fish']]) fs.writeFileSync(path.join(root, 'completions', file), completionScript(shell));
console.log('wrote completions/, docs/cli.md, docs/config.md, man/replica.1, man/replica-monitor.1');
