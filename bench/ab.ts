/**
 * `npm run bench -- ab --base REV [--rounds 3]`: purchases per second before and after a change,
 * side by side in one run. The service of commit REV (a worktree in a temporary directory,
 * sharing this checkout's `node_modules` when the lockfiles agree) and of this checkout each
 * start on an embedded PostgreSQL of their own; each gets 20 concerts of 100,000 seats and a
 * warm-up, then the same 20,000 purchases over 256 connections (`bench/load.ts`), alternating
 * before and after, `--rounds` times. Ratios from one run compare code; the machine's noise
 * falls on both sides alike. Beside each side's purchases a second, the CPU a purchase took, in
 * the service (all its threads) and in its PostgreSQL. `--watch` also scrapes `/metrics` and
 * polls `/dashboard/state` once a second on the side being measured, as an operator's
 * Prometheus and wall screen would.
 */
import { createConcert, fmt, git, load, option, root, startTarget, type Target, worktree } from "./shared.js"

export const ab = async (args: ReadonlyArray<string>) => {
  const base = option(args, "base")
  if (base === undefined) throw new Error("usage: npm run bench -- ab --base <commit> [--rounds N]")
  const rounds = Number(option(args, "rounds") ?? 3) || 3
  const commit = git("rev-parse", "--short", base)
  const head = git("rev-parse", "--short", "HEAD") + (git("status", "--porcelain").length > 0 ? "+changes" : "")
  // Each side starts its own database: a DATABASE_URL would have them share one.
  delete process.env.DATABASE_URL
  const cleanup: Array<() => Promise<void>> = []
  try {
    const { checkout, remove } = await worktree(commit)
    cleanup.push(remove)

    const sides: Array<{ readonly name: string; readonly target: Target; readonly concerts: Array<string> }> = []
    for (const [name, dir] of [[`before (${commit})`, checkout], [`after (${head})`, root]] as const) {
      const target = await startTarget([], dir)
      cleanup.unshift(target.stop)
      const concerts: Array<string> = []
      for (let i = 0; i < 20; i++) concerts.push(await createConcert(target.port, 100_000, `AB ${i}`))
      sides.push({ name, target, concerts })
    }
    const watch = args.includes("--watch")
    const run = async (side: (typeof sides)[number]) => {
      let running = true
      const watching = watch
        ? (async () => {
          while (running) {
            for (const url of ["/metrics", "/dashboard/state"]) {
              await fetch(`http://127.0.0.1:${side.target.port}${url}`).then((r) => r.arrayBuffer()).catch(() => undefined)
            }
            await new Promise((resolve) => setTimeout(resolve, 1000))
          }
        })()
        : Promise.resolve()
      try {
        const cpu = await side.target.cpuFromNow()
        const result = await load({ port: side.target.port, concerts: side.concerts, requests: 20_000, connections: 256, burst: false })
        const used = await cpu()
        const sold = result.histogram["201"] ?? 0
        const perPurchase = (seconds: number | undefined) => seconds === undefined || sold === 0 ? undefined : seconds * 1e6 / sold
        return { ...result, serviceMicros: perPurchase(used.service), databaseMicros: perPurchase(used.database) }
      } finally {
        running = false
        await watching
      }
    }
    for (const side of sides) await run(side) // warm-up
    const rows: Array<string> = []
    for (let round = 1; round <= rounds; round++) {
      const [before, after] = [await run(sides[0]!), await run(sides[1]!)]
      for (const [side, result] of [[sides[0]!, before], [sides[1]!, after]] as const) {
        console.log(`round ${round} ${side.name}: ${fmt(result.perSecond)} req/s, p99 ${fmt(result.p99)} ms, ${JSON.stringify(result.histogram)}`)
      }
      const micros = (value: number | undefined) => value === undefined ? "–" : fmt(value)
      const cpu = (result: typeof before) => `${micros(result.serviceMicros)} + ${micros(result.databaseMicros)}`
      rows.push(
        `| ${round} | ${fmt(before.perSecond)} (${fmt(before.p99)}) | ${fmt(after.perSecond)} (${fmt(after.p99)}) | ${fmt(after.perSecond / before.perSecond, 2)} | ${cpu(before)} | ${cpu(after)} |`
      )
    }
    // CPU a purchase: the service's (all its threads) and its database server's, in µs.
    console.log(`\n| round | ${sides[0]!.name} req/s (p99 ms) | ${sides[1]!.name} req/s (p99 ms) | after / before | before: µs of CPU a purchase, service + PostgreSQL | after: the same |`)
    console.log("|---|---|---|---|---|---|")
    for (const row of rows) console.log(row)
  } finally {
    for (const step of cleanup) await step().catch((error) => console.error(String(error)))
  }
}
