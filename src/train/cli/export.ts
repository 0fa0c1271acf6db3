/**
 * Command-line interface of export.js: a checkpoint (or an imported folder) to a Hugging Face
 * Time-MoE folder. Exit codes (the one table, src/util/cli-errors.ts): 0 written; 2 bad input (a
 * flag, the checkpoint, an --out that is the run or inside it, or cannot be written: the message
 * names the problem and the fix, nothing is written); 1 the environment failed while writing (disk
 * full, I/O error: nothing half-written is left).
 */
import { parseCommandLine } from './parse.ts';
import { Command, InvalidArgumentError } from 'commander';
import { z } from 'zod';
import { injectCliFault, reportCliError } from '../../util/cli-errors.ts';
import { shown } from '../../util/output-path.ts';
import { EXPORT_DTYPES, exportHf, type ExportDType } from '../interop/hf-export.ts';
import { describeSource, resolveModelSource, sourceLora } from '../interop/model-source.ts';

const DTYPES = Object.keys(EXPORT_DTYPES) as ExportDType[];
const OptionsSchema = z
  .object({
    checkpoint: z.string().min(1),
    out: z.string().min(1),
    force: z.boolean().default(false),
    dtype: z.enum(DTYPES as [ExportDType, ...ExportDType[]]).default('f32'),
  })
  .strict();

function dtype(v: string): ExportDType {
  if (!(DTYPES as string[]).includes(v)) throw new InvalidArgumentError(`expected one of ${DTYPES.join(', ')}, got "${v}"`);
  return v as ExportDType;
}

export async function main(argv: string[]): Promise<number> {
  const program = new Command()
    .name('export.js')
    .description('webgpu-moe: write a checkpoint as a Hugging Face Time-MoE folder (config.json + model.safetensors + SHA256SUMS)')
    .requiredOption('--checkpoint <dir>', 'checkpoint directory, run directory (runs/<name>) or Hugging Face Time-MoE folder')
    .requiredOption('--out <folder>', 'folder to write (must not exist or be empty, unless --force; never the run being exported or inside it)')
    .option('--force', 'write into a non-empty --out: its files are moved aside into <out>.set-aside-<time>/ and listed (nothing is deleted)')
    .option(
      '--dtype <dtype>',
      `weights dtype in model.safetensors: ${DTYPES.join(', ')} (bf16 halves the file; f16 also, but refuses weights beyond ±65504)`,
      dtype,
      'f32' as ExportDType,
    )
    .addHelpText('after', '\nExit codes: 0 written, 1 the disk failed while writing (full, I/O error), 2 bad input (nothing written), 70 a bug.');
  const parseExit = parseCommandLine(program, argv);
  if (parseExit !== null) return parseExit;
  const opts = OptionsSchema.parse(program.opts());
  try {
    injectCliFault('export.js');
    const source = await resolveModelSource(opts.checkpoint);
    const r = await exportHf(source, opts.out, { force: opts.force, dtype: opts.dtype });
    const c = r.config;
    const lora = sourceLora(source);
    if (r.setAside)
      console.error(
        `[export] --force: the previous files of ${shown(r.out)} were moved to ${shown(r.setAside.path)}/ (nothing deleted): ${r.setAside.files.join(', ')}`,
      );
    console.log(
      `exported ${describeSource(source)} to ${r.out}\n` +
        `  config.json: time_moe, hidden_size ${String(c.hidden_size)}, ${String(c.num_hidden_layers)} layers, ${String(c.num_experts)} experts (top-${String(c.num_experts_per_tok)}), intermediate_size ${String(c.intermediate_size)}, horizon_lengths [${(c.horizon_lengths as number[]).join(', ')}]; auto_map: the published Time-MoE code (from_pretrained(..., trust_remote_code=True))\n` +
        `  model.safetensors: ${r.tensors} tensors, ${r.parameters.toLocaleString('en-US')} parameters, ${EXPORT_DTYPES[r.dtype].st}, ${r.bytes.toLocaleString('en-US')} bytes, sha256 ${r.sha256}\n` +
        `  SHA256SUMS: checksums of both (sha256sum -c SHA256SUMS; forecast.js and model.init.from check them)` +
        (lora ? `\n  LoRA adapters (rank ${lora.rank}, alpha ${lora.alpha}, ${lora.targets.join(', ')}) merged into the weights: W + alpha/rank · B A` : ''),
    );
    return 0;
  } catch (e) {
    return reportCliError(e, 'export.js');
  }
}
