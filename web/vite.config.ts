import { defineConfig } from "vite";

// No React plugin: Vite's own transform compiles JSX (automatic runtime); the UI has no need
// for fast refresh badly enough to carry a Babel toolchain.
export default defineConfig({
  oxc: { jsx: { runtime: "automatic" } },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: true,
    // No inline <script> or data: module preload: the CSP is script-src 'self'.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
  },
  server: {
    port: 5173,
    proxy: { "/api": { target: process.env.AA_API_URL ?? "http://127.0.0.1:8000", changeOrigin: false } },
  },
});
