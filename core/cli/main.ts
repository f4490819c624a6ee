#!/usr/bin/env -S node --max-semi-space-size=32
/**
 * The `sluice` command. This file only wires: each command group lives in its own module and
 * registers itself on the program (topics.ts, produce.ts, consume.ts, groups.ts; run and validate
 * join the same way). Errors end here: one line `sluice: <message>` on stderr, exit status 2 for
 * usage errors and 1 otherwise; `--verbose` adds the stack and the causes.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { Command, CommanderError } from 'commander';

import { LogError } from '../log/errors.js';
import { PipelineConfigError, formatIssue } from '../pipeline/config.js';
import { registerConsumeCommand } from './consume.js';
import { CliError } from './errors.js';
import { registerGroupCommands } from './groups.js';
import { registerProduceCommand } from './produce.js';
import { registerTopicCommands } from './topics.js';
import { registerRunCommands, registerSchemaCommand } from './run.js';
import { registerStatusCommand } from './status.js';
import { registerPipelineCommands } from './pipelines.js';

export function buildProgram(): Command {
  const program = new Command('sluice')
    .description('a durable partitioned log with source and sink connectors')
    .version(packageVersion(), '-V, --version')
    .option('--verbose', 'more detail on stderr, and stack traces with errors')
    .showSuggestionAfterError(true)
    // Settings made before the subcommands are created are inherited by all of them.
    .exitOverride()
    .configureOutput({
      outputError: (message, write) => write(`sluice: ${oneLine(message.replace(/^error: /, ''))}\n`),
    });

  // One module per command group. `run` and `validate` register here too when they exist.
  registerTopicCommands(program);
  registerProduceCommand(program);
  registerConsumeCommand(program);
  registerGroupCommands(program);
  registerRunCommands(program);
  registerSchemaCommand(program);
  registerStatusCommand(program);
  registerPipelineCommands(program);
  return program;
}

/** Runs the command line and resolves to the exit status; never rejects. */
export async function main(argv: readonly string[] = process.argv): Promise<number> {
  const verbose = argv.slice(2).includes('--verbose');
  // `sluice ... | head` closes the pipe early: that is the reader's choice, not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') return;
    process.stderr.write(`sluice: cannot write to stdout: ${err.message}\n`);
    process.exitCode = 1;
  });
  try {
    await buildProgram().parseAsync([...argv]);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has printed its message (or the help) through outputError already.
      return err.exitCode === 0 ? 0 : 2;
    }
    process.stderr.write(formatError(err, verbose));
    return exitCodeFor(err);
  }
}

/** 2 when the command line itself is wrong, 1 otherwise. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof CliError) return err.code === 'SLUICE_USAGE' ? 2 : 1;
  if (err instanceof LogError) {
    return err.code === 'SLUICE_INVALID_ARGUMENT' || err.code === 'SLUICE_INVALID_TOPIC' ? 2 : 1;
  }
  return 1;
}

export function formatError(err: unknown, verbose: boolean): string {
  const coded = err instanceof LogError || err instanceof CliError || err instanceof PipelineConfigError;
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof PipelineConfigError && !verbose) {
    // One line per problem, each with its own file:line:column.
    return `${err.issues.map((i) => `sluice: ${formatIssue(i)}`).join('\n')}\n`;
  }
  let text = `sluice: ${oneLine(message)}`;
  if (!verbose) {
    // An error without a code is a bug or an unforeseen failure: point at the way to learn more.
    return `${text}${coded ? '' : ' (run with --verbose for details)'}\n`;
  }
  text += '\n';
  let current: unknown = err;
  for (let depth = 0; current !== undefined && depth < 8; depth++) {
    if (depth > 0) text += 'caused by: ';
    if (current instanceof Error) {
      const code = (current as { code?: unknown }).code;
      text += `${current.stack ?? `${current.name}: ${current.message}`}\n`;
      if (typeof code === 'string') text += `  code: ${code}\n`;
      current = current.cause;
    } else {
      text += `${String(current)}\n`;
      current = undefined;
    }
  }
  return text;
}

function oneLine(text: string): string {
  return text.trim().replace(/\s*\n\s*/g, ' ');
}

function packageVersion(): string {
  try {
    // dist/core/cli/main.js and core/cli/main.ts are both three levels below the package root.
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  const code = await main();
  process.exitCode = code;
  // Everything is closed by now; should some handle still hold the event loop, do not hang on it.
  setTimeout(() => process.exit(code), 2000).unref();
}
