import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/harness/global_setup.ts"],
    reporters: ["default", "./test/harness/summary_reporter.ts"],
    // s3rver needs the legacy OpenSSL provider to list more than 1,000 keys; only the forks pool takes it.
    pool: "forks",
    execArgv: ["--openssl-legacy-provider"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    teardownTimeout: 30_000,
  },
});
