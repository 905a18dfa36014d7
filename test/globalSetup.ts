/**
 * One PostgreSQL for the whole run: `DATABASE_URL` when set, otherwise an embedded server in a
 * temporary directory (durability settings off: it is thrown away). Each suite then creates a
 * database of its own on it (`test/fixtures/Database.ts`).
 */
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import type { TestProject } from "vitest/node"
import { startEmbeddedPostgres } from "../src/sql/EmbeddedPostgres.js"

declare module "vitest" {
  export interface ProvidedContext {
    databaseUrl: string
  }
}

export default async function setup(project: TestProject) {
  const configured = process.env.DATABASE_URL
  if (configured !== undefined && configured !== "") {
    project.provide("databaseUrl", configured)
    return
  }
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "ticketoverflow-test-"))
  const server = await startEmbeddedPostgres({
    dataDir,
    settings: { fsync: "off", synchronous_commit: "off", full_page_writes: "off", max_connections: "400" }
  }).catch(async (error: unknown) => {
    await fs.rm(dataDir, { recursive: true, force: true })
    // Said here, in one line: a global setup's exception alone may show nothing but a banner.
    const reason = error instanceof Error ? error.message : String(error)
    process.stderr.write(`\nThe test database did not start: ${reason}\n(or set DATABASE_URL to a PostgreSQL the tests may create databases on)\n\n`)
    throw error
  })
  project.provide("databaseUrl", server.url)
  return async () => {
    await server.stop()
    await fs.rm(dataDir, { recursive: true, force: true })
  }
}
