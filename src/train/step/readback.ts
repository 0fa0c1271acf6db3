/**
 * A step's metrics readback as named, typed fields: each tensor is registered with a name and a
 * decoder and comes back through its own handle, instead of one flat array walked by position.
 * All registered tensors still come back in ONE readMany (one copy into staging, one map), riding
 * in the step's own submit.
 */
import type { Backend, ReadArray, Tensor } from '../../kernels/tensor.ts';

/** A handle for one registered value; `name` is for messages. */
export interface Field<T> {
  readonly name: string;
  readonly index: number;
  /** Phantom: the decoded type. */
  readonly _type?: T;
}

export class Readback {
  private readonly tensors: Tensor[] = [];
  private readonly decoders: ((a: ReadArray) => unknown)[] = [];
  private readonly names: string[] = [];

  /** Register `tensor` under `name`, decoded by `decode` once read. */
  add<T>(name: string, tensor: Tensor, decode: (a: ReadArray) => T): Field<T> {
    this.tensors.push(tensor);
    this.decoders.push(decode);
    this.names.push(name);
    return { name, index: this.tensors.length - 1 };
  }

  /** Submit the copies now (the tensors may be disposed right after); the values come later. */
  read(rt: Backend): Promise<ReadValues> {
    const names = [...this.names];
    const decoders = [...this.decoders];
    return rt.readMany(this.tensors).then(
      (raw) =>
        new ReadValues(
          names,
          raw.map((a, i) => decoders[i]!(a)),
        ),
    );
  }
}

export class ReadValues {
  constructor(
    private readonly names: readonly string[],
    private readonly values: readonly unknown[],
  ) {}

  get<T>(f: Field<T>): T {
    if (this.names[f.index] !== f.name) throw new Error(`readback: field ${f.name} does not belong to this readback`);
    return this.values[f.index] as T;
  }
}

/** Decoders of the shapes the trainer reads. */
export const decode = {
  f32: (a: ReadArray): Float32Array => {
    if (!(a instanceof Float32Array)) throw new Error('readback: expected f32 values');
    return a;
  },
  scalar: (a: ReadArray): number => a[0]!,
};
