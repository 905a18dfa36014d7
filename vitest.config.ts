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
    minWorkers: 1,
    // Messages within a process are encoded and decoded as between runners: a payload that
    // could not cross to another runner fails here. (The services the tests start inherit it.)
    env: { CLUSTER_SIMULATE_SERIALIZATION: "true" }
  }
})
