/**
 * What `/dashboard` shows, sampled once a second from the metrics (`src/Metrics.ts`): per
 * concert its seats, sales per second over the last five minutes, buyers' p50/p99 and the
 * rates of refusals over the last ten seconds; the print queue, the seating plans' lag, the
 * database pool and the process. The page polls the latest snapshot, so any number of screens
 * cost one sampling, and history is there the moment a screen opens.
 */
import { Effect, type MetricKey, Schedule } from "effect"
import * as Metrics from "../Metrics.js"

/** Seconds of sales history a card draws. */
const historySeconds = 300
/** Seconds over which latency quantiles and rates are computed. */
const window = 10
/** A concert nothing happened to for this long leaves the history (its card stays while run here). */
const forgetAfter = historySeconds
/** Cards at most, busiest first. */
const maxCards = 48

const statuses = ["201", "412", "422", "503"] as const
const kinds: ReadonlyArray<Metrics.OrderKind> = ["purchase", "reservation", "registration"]

interface Track {
  /** Seats sold (or, for a concert not run here, purchases answered 201) at each second. */
  readonly sold: Float64Array
  /** Answers by status at each second, cumulative: statuses × ring. */
  readonly answers: Float64Array
  /** When each second was sampled (ms): rates divide by the time that passed, not by ticks. */
  readonly at: Float64Array
  /** Buyers' (purchases and reservations) cumulative latency buckets at each of the last `window` + 1 seconds. */
  readonly latency: Array<ReadonlyArray<readonly [number, number]>>
  lastChange: number
  last: number
}

export interface ConcertCard {
  readonly id: string
  readonly name: string | null
  readonly date: string | null
  readonly status: string | null
  readonly capacity: number | null
  readonly sold: number | null
  readonly held: number | null
  readonly free: number | null
  readonly waiting: number | null
  readonly mode: string | null
  readonly opensAt: number | null
  readonly drawnAt: number | null
  readonly registered: number | null
  /** Seats sold in each of the last `historySeconds` seconds, oldest first. */
  readonly sales: ReadonlyArray<number>
  /** Buyers' latency over the last ten seconds, in milliseconds (null without answers). */
  readonly p50: number | null
  readonly p99: number | null
  /** Answers per second over the last ten seconds, by status. */
  readonly rates: Readonly<Record<(typeof statuses)[number], number>>
}

export interface Snapshot {
  readonly at: number
  readonly concerts: ReadonlyArray<ConcertCard>
  readonly printQueue: { readonly today: number; readonly week: number; readonly later: number }
  /** Time to PRINTED over the last minute, in milliseconds. */
  readonly printP50: number | null
  readonly printP99: number | null
  readonly seatingBehind: number
  readonly seatingLagSeconds: number
  readonly pool: { readonly inUse: number; readonly idle: number; readonly waiting: number; readonly max: number }
  readonly rssBytes: number
  readonly eventLoopP99Millis: number
}

/** The `q` quantile of the observations between two cumulative bucket lists, interpolated in its bucket. */
export const quantile = (
  before: ReadonlyArray<readonly [number, number]> | undefined,
  after: ReadonlyArray<readonly [number, number]>,
  q: number
): number | null => {
  const at = (i: number) => after[i]![1] - (before?.[i]?.[1] ?? 0)
  const total = after.length === 0 ? 0 : at(after.length - 1)
  if (total <= 0) return null
  const rank = q * total
  let lowerBound = 0
  let below = 0
  for (let i = 0; i < after.length; i++) {
    const [bound] = after[i]!
    const upTo = at(i)
    if (upTo >= rank) {
      // The last bucket is open-ended: its lower bound is the best that can be said.
      if (!Number.isFinite(bound)) return lowerBound
      const inBucket = upTo - below
      return lowerBound + (bound - lowerBound) * (inBucket === 0 ? 1 : (rank - below) / inBucket)
    }
    lowerBound = bound
    below = upTo
  }
  return lowerBound
}

const merge = (
  a: ReadonlyArray<readonly [number, number]> | undefined,
  b: ReadonlyArray<readonly [number, number]> | undefined
): ReadonlyArray<readonly [number, number]> =>
  a === undefined ? b ?? [] : b === undefined ? a : a.map(([bound, count], i) => [bound, count + (b[i]?.[1] ?? 0)] as const)

const gauge = (key: MetricKey.MetricKey.Gauge<number>, label: string, value: string) => {
  const series = Metrics.labelled(key, { [label]: value })
  return () => series.unsafeValue([]).value
}
const printDepth = {
  today: gauge(Metrics.printQueueDepth, "band", "today"),
  week: gauge(Metrics.printQueueDepth, "band", "week"),
  later: gauge(Metrics.printQueueDepth, "band", "later")
}
const poolInUse = gauge(Metrics.poolConnections, "state", "in_use")
const poolIdle = gauge(Metrics.poolConnections, "state", "idle")
const rss = gauge(Metrics.memory, "kind", "rss")
const loopP99 = gauge(Metrics.eventLoopDelay, "stat", "p99")

const quiet: ReadonlyArray<number> = Array.from({ length: historySeconds }, () => 0)
const noRates = { "201": 0, "412": 0, "422": 0, "503": 0 } as const

const idleCard = (id: string, figures: Metrics.ConcertFigures | undefined): ConcertCard => ({
  id,
  name: figures?.name ?? null,
  date: figures?.date ?? null,
  status: figures?.status ?? null,
  capacity: figures?.capacity ?? null,
  sold: figures?.sold ?? null,
  held: figures?.held ?? null,
  free: figures?.free ?? null,
  waiting: figures?.waiting ?? null,
  mode: figures?.mode ?? null,
  opensAt: figures?.opensAt ?? null,
  drawnAt: figures?.drawnAt ?? null,
  registered: figures?.registered ?? null,
  sales: quiet,
  p50: null,
  p99: null,
  rates: noRates
})

export class Dashboard extends Effect.Service<Dashboard>()("Dashboard", {
  scoped: Effect.gen(function*() {
    const tracks = new Map<string, Track>()
    /** Each concert's sold count and answers at the last sample, to see that something changed. */
    const lastSeen = new Map<string, { readonly key: string; readonly sold: number; readonly answered: ReadonlyArray<number> }>()
    /** Cumulative print-time buckets at each of the last 61 seconds. */
    const printHistory: Array<ReadonlyArray<readonly [number, number]>> = []
    let tick = 0
    let latestJson = "{}"

    const trackOf = (id: string, now: number): Track => {
      let track = tracks.get(id)
      if (track === undefined) {
        track = {
          sold: new Float64Array(historySeconds + 1).fill(Number.NaN),
          answers: new Float64Array(statuses.length * (historySeconds + 1)).fill(Number.NaN),
          at: new Float64Array(historySeconds + 1).fill(Number.NaN),
          latency: [],
          lastChange: now,
          last: -1
        }
        tracks.set(id, track)
      }
      return track
    }

    const ring = historySeconds + 1
    const slot = (t: number) => ((t % ring) + ring) % ring

    const sample = Effect.sync(() => {
      const now = Date.now()
      tick += 1
      const board = Metrics.concertBoard()
      const totals = Metrics.orderTotals()
      const ids = new Set<string>([...board.keys(), ...totals.keys()])
      ids.delete(Metrics.noConcert)
      const cards: Array<ConcertCard & { readonly recent: number }> = []
      for (const id of ids) {
        const figures = board.get(id)
        const orders = totals.get(id)
        const answered = statuses.map((status) =>
          kinds.reduce((sum, kind) => sum + (orders?.counts.get(`${kind} ${status}`) ?? 0), 0)
        )
        // Seats sold, as the concert's entity says; for a concert another process runs, this
        // process's purchases answered 201 (each one seat).
        const sold = figures?.sold ?? orders?.counts.get("purchase 201") ?? 0
        // A concert gets a history (about 12 KB) once something changes at it; an idle one
        // is a card with its figures alone.
        const key = `${sold} ${answered.join(" ")}`
        const seen = lastSeen.get(id)
        lastSeen.set(id, { key, sold, answered })
        if (!tracks.has(id) && (seen === undefined || seen.key === key)) {
          cards.push({ ...idleCard(id, figures), recent: 0 })
          continue
        }
        const track = trackOf(id, now)
        if (track.last < 0 && seen !== undefined) {
          // Its history starts a second ago, from what was seen then: this second's sales count.
          track.sold[slot(tick - 1)] = seen.sold
          track.at[slot(tick - 1)] = now - 1000
          seen.answered.forEach((n, i) => (track.answers[i * ring + slot(tick - 1)] = n))
          track.last = tick - 1
        }
        const here = slot(tick)
        const previous = track.last < 0 ? undefined : track.sold[slot(track.last)]
        if (previous === undefined || previous !== sold || answered.some((n, i) => n !== track.answers[i * ring + slot(track.last)])) {
          track.lastChange = now
        }
        // Seconds not sampled (a new track) read as no change.
        for (let t = track.last < 0 ? tick : track.last + 1; t <= tick; t++) {
          track.sold[slot(t)] = sold
          track.at[slot(t)] = now
          answered.forEach((n, i) => (track.answers[i * ring + slot(t)] = n))
        }
        track.last = tick
        track.latency.push(merge(orders?.latency.get("purchase"), orders?.latency.get("reservation")))
        if (track.latency.length > window + 1) track.latency.shift()

        const sales: Array<number> = []
        for (let t = tick - historySeconds + 1; t <= tick; t++) {
          const a = track.sold[slot(t - 1)]!
          const b = track.sold[slot(t)]!
          sales.push(Number.isNaN(a) || Number.isNaN(b) ? 0 : Math.max(0, b - a))
        }
        const from = Math.max(tick - window, tick - (track.latency.length - 1))
        const since = track.at[slot(from)]!
        const seconds = Number.isNaN(since) || now - since < 1000 ? Math.max(1, tick - from) : (now - since) / 1000
        const rates = Object.fromEntries(statuses.map((status, i) => {
          const then = track.answers[i * ring + slot(from)]!
          const diff = Number.isNaN(then) ? 0 : track.answers[i * ring + here]! - then
          return [status, Math.round((diff / seconds) * 10) / 10]
        })) as Record<(typeof statuses)[number], number>
        const newest = track.latency[track.latency.length - 1]!
        // Quantiles of the window only: a history one sample long has no window yet.
        const oldest = track.latency[0]!
        const ms = (q: number) => {
          const value = track.latency.length > 1 ? quantile(oldest, newest, q) : null
          return value === null ? null : Math.round(value * 10_000) / 10
        }
        cards.push({
          ...idleCard(id, figures),
          sales,
          p50: ms(0.5),
          p99: ms(0.99),
          rates,
          recent: sales.slice(-60).reduce((a, b) => a + b, 0) + rates["201"] + rates["412"] + rates["422"] + rates["503"]
        })
      }
      for (const [id, track] of tracks) {
        if (!ids.has(id) || now - track.lastChange > forgetAfter * 1000) tracks.delete(id)
      }
      for (const id of lastSeen.keys()) if (!ids.has(id)) lastSeen.delete(id)
      cards.sort((a, b) => b.recent - a.recent || (a.name ?? a.id).localeCompare(b.name ?? b.id))

      const printed = Metrics.printSeconds.unsafeValue([]).buckets
      printHistory.push(printed)
      if (printHistory.length > 61) printHistory.shift()
      const printMs = (q: number) => {
        const value = quantile(printHistory.length > 1 ? printHistory[0] : undefined, printed, q)
        return value === null ? null : Math.round(value * 1000)
      }
      const latest: Snapshot = {
        at: now,
        concerts: cards.slice(0, maxCards).map(({ recent: _, ...card }) => card),
        printQueue: { today: printDepth.today(), week: printDepth.week(), later: printDepth.later() },
        printP50: printMs(0.5),
        printP99: printMs(0.99),
        seatingBehind: Metrics.seatingBehind.unsafeValue([]).value,
        seatingLagSeconds: Metrics.seatingLag.unsafeValue([]).value,
        pool: {
          inUse: poolInUse(),
          idle: poolIdle(),
          waiting: Metrics.poolWaiting.unsafeValue([]).value,
          max: Metrics.poolMax.unsafeValue([]).value
        },
        rssBytes: rss(),
        eventLoopP99Millis: Math.round(loopP99() * 10_000) / 10
      }
      latestJson = JSON.stringify(latest)
    })

    yield* Effect.forkScoped(Effect.repeat(sample, Schedule.spaced("1 second")))
    return {
      /** The latest snapshot as JSON text. */
      json: () => latestJson
    } as const
  })
}) {}
