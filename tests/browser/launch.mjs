// Headless Debian chromium for the browser tests and benchmarks, WebGPU through SwiftShader
// (Vulkan on the CPU) when `webgpu` is set; CHROMIUM overrides /usr/bin/chromium.
import { chromium } from 'playwright-core';

export const ARGS = ['--headless', '--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
export const WEBGPU_ARGS = ['--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-angle=swiftshader'];

export function launch(webgpu = false) {
  const args = webgpu ? [...ARGS, ...WEBGPU_ARGS] : ARGS;
  return chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args });
}
