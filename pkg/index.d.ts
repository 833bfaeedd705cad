export interface Grounding {
  /** Box in pixels of the original image: [x1, y1, x2, y2]. */
  box: [number, number, number, number];
  /** The same box on the 0-100 grid. */
  boxNorm: [number, number, number, number];
  /** The model's answer, `{<x1><y1><x2><y2>}`. */
  text: string;
  /**
   * The chance that the box overlaps the true region at IoU >= 0.5, calibrated on validation
   * films when the bundle holds a calibration (`calibrated`), else the answer probability;
   * null when the image is outside what the model knows (`inDistribution` false): then no
   * figure speaks for the box, and only the raw `probability` remains.
   */
  confidence: number | null;
  /** Whether `confidence` is calibrated (the bundle has calibration.json); false when null. */
  calibrated: boolean;
  /** The model's answer probability: the geometric mean of the box tokens' probabilities. */
  probability: number;
  /**
   * Whether the image looks like the films the model was trained on (its vision features
   * within the bundle's out-of-distribution threshold); null when the bundle holds no
   * ood.safetensors. Outside, `confidence` is null.
   */
  inDistribution: boolean | null;
  /** The out-of-distribution score: about 1 for a typical training film. */
  oodScore: number | null;
  /** Scores above it are outside what the model knows. */
  oodThreshold: number | null;
  /**
   * The 99th percentile of validation films' scores: between it and oodThreshold the film is
   * unusual for the model, and its confidence was measured on films nearer the training ones.
   */
  oodTypical: number | null;
  /**
   * For the anatomy structures whose confidence reads it (each lung, the heart, the trachea,
   * each hemidiaphragm): the mean IoU of the boxes found on six shifted views of the image
   * (a margin cut from each side, a zoom in, a zoom out) with this box; null otherwise.
   */
  agreement: number | null;
  /**
   * Milliseconds this answer took. The film is read once (vision tower, connector,
   * out-of-distribution score) and kept: the next phrase on the same image skips that part.
   */
  ms: number;
  backend: 'webgpu' | 'cpu';
}

export interface LoadOptions {
  backend?: 'auto' | 'webgpu' | 'cpu';
  /** Where the .wasm file of the chosen build is, or its bytes (default: beside this package's files). */
  wasm?: string | URL | Uint8Array | ArrayBuffer;
  noWarmup?: boolean;
  /** Called as a bundle folder downloads: bytes so far and in all (from its manifest). */
  onProgress?: (loaded: number, total: number) => void;
  /**
   * A Cache API cache name: a bundle folder's files are served from it and stored in it, so a
   * later visit loads offline. A bundle too large for a tab's 4 GB of WebAssembly memory is
   * refused from its manifest, before the download; a cached copy that fails its checksums is
   * deleted, so that the next load fetches afresh.
   */
  cache?: string;
}

/** Bytes of WebAssembly memory a bundle needs at load (files plus the weights widened to f32). */
export declare function memoryNeeded(manifest: { dtype: string; files: Record<string, { size: number }> }): number;

export type ImageInput = Uint8Array | ArrayBuffer | ImageData | ImageBitmap;

/**
 * Instantiates one build once: "cpu" (default; 4.7 MB), "gpu" (with WebGPU) or "auto" (gpu where
 * an adapter is granted). `Grounder.load` calls it.
 */
export declare function initWasm(wasm?: LoadOptions['wasm'], build?: 'cpu' | 'gpu' | 'auto'): Promise<unknown>;

export declare class Grounder {
  /** A bundle folder URL (or path in Node), or a map of file name to bytes. */
  static load(bundle: string | URL | Record<string, Uint8Array>, options?: LoadOptions): Promise<Grounder>;
  readonly backend: 'webgpu' | 'cpu';
  /** The adapters the bundle holds beside its base weights. */
  readonly adapters: string[];
  /** The adapter in use; undefined for the base weights. */
  readonly adapter: string | undefined;
  /** Switches adapters (null: the base weights) without fetching or building the base again. */
  useAdapter(name: string | null): Promise<void>;
  ground(image: ImageInput, phrase: string): Promise<Grounding>;
  /**
   * Trains a LoRA adapter on the examples (the native trainer's steps) and answers with it from
   * then on; answers after it are uncalibrated.
   */
  fineTune(examples: TuneExample[], options?: TuneOptions): Promise<{ losses: number[]; steps: number; valIoU: [number, number][] }>;
  /** The fine-tuned adapter as an HF PEFT folder's files, by name; with { zip: true } zipped. */
  exportAdapter(): Promise<Record<string, Uint8Array>>;
  exportAdapter(options: { zip: true }): Promise<Uint8Array>;
  /** Answers with an adapter zip (exportAdapter({ zip: true }) or a progress save), named `name`. */
  loadAdapter(name: string, zip: Uint8Array): Promise<void>;
}

export interface TuneExample {
  /** Encoded PNG, JPEG or DICOM bytes; in a browser also an ImageData or ImageBitmap. */
  image: Uint8Array | ArrayBuffer | ArrayBufferView | ImageData | ImageBitmap;
  phrase: string;
  /** [x1, y1, x2, y2] in the image's pixels. */
  box: [number, number, number, number];
}

export interface TuneOptions {
  /** The adapter's name ("fine-tuned"): listed in `adapters`, `useAdapter(name)` comes back to it. */
  name?: string;
  steps?: number;
  batch?: number;
  lr?: number;
  rank?: number;
  alpha?: number;
  warmupSteps?: number;
  seed?: number;
  /** Held-out examples: their mean IoU is reported every validateEvery steps (steps / 10). */
  validation?: TuneExample[];
  validateEvery?: number;
  /** Every this many steps the progress carries the adapter as a zip, for resume (0: never). */
  saveEvery?: number;
  /** Go on from a saved adapter at its step (AdamW's moments start again). */
  resume?: { adapter: Uint8Array; step: number };
  /** After each step (and at step 0 with the IoU before training); return false to stop. */
  onProgress?: (p: { step: number; steps: number; loss?: number; valIoU?: number; adapter?: Uint8Array }) => boolean | void;
  /** Stops after the step in progress. */
  signal?: AbortSignal;
}

export declare function dicomFrame(bytes: Uint8Array): {
  width: number; height: number; samples: 1 | 3; photometric: string; frames: number;
  transferSyntax: string; window: [number, number] | null; values: Float64Array;
};
export declare function preview(bytes: Uint8Array): { width: number; height: number; rgba: Uint8Array };
