/**
 * Command-line interface of export.js: a checkpoint (or an imported folder) to a Hugging Face
 * Time-MoE folder. Exit codes: 0 written, 2 bad input (the message names the problem and the fix;
 * nothing is written).
 */
import { parseCommandLine } from './parse.ts';
import { Command } from 'commander';
import { z } from 'zod';
import { CheckpointError } from '../persist/checkpoint.ts';
import { ConfigError } from '../config.ts';
import { HfConfigError } from '../interop/hf-config.ts';
import { exportHf } from '../interop/hf-export.ts';
import { describeSource, resolveModelSource, sourceLora } from '../interop/model-source.ts';

const OptionsSchema = z.object({ checkpoint: z.string().min(1), out: z.string().min(1), force: z.boolean().default(false) }).strict();

export async function main(argv: string[]): Promise<number> {
  const program = new Command()
    .name('export.js')
    .description('webgpu-moe: write a checkpoint as a Hugging Face Time-MoE folder (config.json + model.safetensors)')
    .requiredOption('--checkpoint <dir>', 'checkpoint directory, run directory (runs/<name>) or Hugging Face Time-MoE folder')
    .requiredOption('--out <folder>', 'folder to write (must not exist or be empty, unless --force)')
    .option('--force', 'replace an existing --out folder');
  const parseExit = parseCommandLine(program, argv);
  if (parseExit !== null) return parseExit;
  const opts = OptionsSchema.parse(program.opts());
  try {
    const source = await resolveModelSource(opts.checkpoint);
    const r = await exportHf(source, opts.out, { force: opts.force });
    const c = r.config;
    const lora = sourceLora(source);
    console.log(
      `exported ${describeSource(source)} to ${r.out}\n` +
        `  config.json: time_moe, hidden_size ${String(c.hidden_size)}, ${String(c.num_hidden_layers)} layers, ${String(c.num_experts)} experts (top-${String(c.num_experts_per_tok)}), intermediate_size ${String(c.intermediate_size)}, horizon_lengths [${(c.horizon_lengths as number[]).join(', ')}]\n` +
        `  model.safetensors: ${r.tensors} tensors, ${r.parameters.toLocaleString('en-US')} parameters, F32, ${r.bytes.toLocaleString('en-US')} bytes, sha256 ${r.sha256}` +
        (lora ? `\n  LoRA adapters (rank ${lora.rank}, alpha ${lora.alpha}, ${lora.targets.join(', ')}) merged into the weights: W + alpha/rank · B A` : ''),
    );
    return 0;
  } catch (e) {
    if (e instanceof CheckpointError || e instanceof ConfigError || e instanceof HfConfigError) {
      console.error(`error: ${e.message}`);
      return 2;
    }
    throw e;
  }
}
