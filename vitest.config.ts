import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/globalSetup.ts"],
    reporters: ["default", "./test/summaryReporter.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Two cores: suites that start servers and bursts share them; keep the fan-out modest.
    maxWorkers: 2,
    minWorkers: 1
  }
})
