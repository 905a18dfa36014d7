/**
 * What the service measures, declared once with Effect's `Metric`. `/metrics` serves them in
 * Prometheus' text format, OTLP exports them when configured, and `/dashboard` draws them.
 * Names and labels are what operators query: `docs/OPERATIONS.md` says what each one tells.
 *
 * The hot path pays a map lookup and a counter or histogram update per answer. Labelled series
 * are made once (per concert and status) from their full key (`labelled`) and kept: an update
 * then goes straight to its registry entry. (`Metric.tagged` would build and hash a key on
 * every update.)
 */
import { Metric, MetricBoundaries, MetricKey, type MetricKeyType, MetricLabel } from "effect"

/** Seconds, from 2.5 ms to 10 s: a buyer's answer, a print, a render. */
const seconds = MetricBoundaries.fromIterable([0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])

/** Orders per entity message or per journal commit. */
const orders = MetricBoundaries.fromIterable([1, 2, 5, 10, 20, 50, 100, 200, 500, 1000])

/** What buyers ask of a concert: the answers they got and how long they waited. */
export type OrderKind = "purchase" | "reservation" | "registration"

const answered = {
  purchase: MetricKey.counter("ticketoverflow_purchases", {
    description: "POST /tickets answered, by concert and HTTP status (201 sold, 422 sold out or cancelled, 503 busy or not saved)",
    incremental: true
  }),
  reservation: MetricKey.counter("ticketoverflow_reservations", {
    description: "POST /reservations answered, by concert and HTTP status (201 held, 412 not enough seats, 503 busy or not saved)",
    incremental: true
  }),
  registration: MetricKey.counter("ticketoverflow_registrations", {
    description: "POST /concerts/{id}/registrations answered, by concert and HTTP status",
    incremental: true
  })
} as const

const waited = {
  purchase: MetricKey.histogram("ticketoverflow_purchase_seconds", seconds, "How long buyers waited for a purchase's answer, by concert"),
  reservation: MetricKey.histogram("ticketoverflow_reservation_seconds", seconds, "How long buyers waited for a reservation's answer, by concert"),
  registration: MetricKey.histogram("ticketoverflow_registration_seconds", seconds, "How long buyers waited for a registration's answer, by concert")
} as const

/** One labelled series of a metric, made once and kept by the caller. */
export const labelled = <Type extends MetricKeyType.MetricKeyType<any, any>>(
  key: MetricKey.MetricKey<Type>,
  labels: Record<string, string>
) => Metric.fromMetricKey(MetricKey.taggedWithLabels(key, Object.entries(labels).map(([k, v]) => MetricLabel.make(k, v))))

/** The label of answers that named no concert that exists (400s): one series, not one per id. */
export const noConcert = "none"

type Counter = Metric.Metric.Counter<number>
type Histogram = Metric.Metric.Histogram<number>

/** One concert's answer series, made once each: an answer costs a map lookup and two updates. */
interface ConcertOrders {
  readonly counters: Map<string, Counter>
  readonly histograms: Map<OrderKind, Histogram>
}

const byConcert = new Map<string, ConcertOrders>()

const ordersOf = (concert: string): ConcertOrders => {
  let orders = byConcert.get(concert)
  if (orders === undefined) {
    orders = { counters: new Map(), histograms: new Map() }
    byConcert.set(concert, orders)
  }
  return orders
}

const none: ReadonlyArray<MetricLabel.MetricLabel> = []

/** One answer to a buyer: its status and how long it took, in seconds. */
export const recordOrder = (kind: OrderKind, concert: string, status: number, tookSeconds: number): void => {
  const orders = ordersOf(concert)
  const key = `${kind} ${status}`
  let counter = orders.counters.get(key)
  if (counter === undefined) {
    counter = labelled(answered[kind], { concert, status: String(status) })
    orders.counters.set(key, counter)
  }
  let histogram = orders.histograms.get(kind)
  if (histogram === undefined) {
    histogram = labelled(waited[kind], { concert })
    orders.histograms.set(kind, histogram)
  }
  counter.unsafeUpdate(1, none)
  histogram.unsafeUpdate(tookSeconds, none)
}

/** A concert's answers so far: counts by kind and status, and cumulative latency buckets by kind. */
export interface OrderTotals {
  readonly counts: ReadonlyMap<string, number>
  readonly latency: ReadonlyMap<OrderKind, ReadonlyArray<readonly [number, number]>>
}

/** The concerts buyers have been answered for, with what they were answered. */
export const orderTotals = (): ReadonlyMap<string, OrderTotals> => {
  const totals = new Map<string, OrderTotals>()
  for (const [concert, orders] of byConcert) {
    const counts = new Map<string, number>()
    for (const [key, counter] of orders.counters) counts.set(key, counter.unsafeValue(none).count)
    const latency = new Map<OrderKind, ReadonlyArray<readonly [number, number]>>()
    for (const [kind, histogram] of orders.histograms) latency.set(kind, histogram.unsafeValue(none).buckets)
    totals.set(concert, { counts, latency })
  }
  return totals
}

// The concert entities: batches, mailboxes, seats.

export const messageOrders = Metric.histogram(
  "ticketoverflow_entity_message_orders",
  orders,
  "Orders carried by one Purchases message to a concert entity (a process sends one message per concert in flight)"
)

export const batchOrders = Metric.histogram(
  "ticketoverflow_batch_orders",
  orders,
  "Orders decided together and journaled in one statement (group commit)"
)

export const expressBatches = Metric.counter("ticketoverflow_express_batches", {
  description:
    "Batches of plain purchases from this process that a concert entity decided in its express lane, without a fiber (of all batches: ticketoverflow_batch_orders_count)",
  incremental: true
})

export const routedPurchases = Metric.counter("ticketoverflow_routed_purchases", {
  description:
    "Purchases this process made ahead of the API's router (plain JSON purchases, tracing off; of all purchases: ticketoverflow_purchases_total)",
  incremental: true
})

export const writeConcerts = Metric.histogram(
  "ticketoverflow_journal_write_concerts",
  MetricBoundaries.fromIterable([1, 2, 5, 10, 20, 50, 100]),
  "Concerts whose batches were journaled together in one statement (the concerts of one database)"
)

export const deskOrders = Metric.counter("ticketoverflow_desk_orders", {
  description: "Orders this runner's sales desk took from other processes, for the concerts this runner owns",
  incremental: true
})

export const deskMessages = Metric.counter("ticketoverflow_desk_messages", {
  description:
    "Messages this runner's sales desk took from other processes, each with every concert's batch a sender had for it: orders over messages is what one message carries",
  incremental: true
})

export const deskOrdersPassedOn = Metric.counter("ticketoverflow_desk_orders_passed_on", {
  description:
    "Orders this runner's sales desk took for concerts it does not own, passed on through the cluster: a sender's routes were behind the cluster's (for a moment after runners join or leave; steadily, a fault)",
  incremental: true
})

export const groupCommits = Metric.counter("ticketoverflow_group_commits", {
  description: "Batches of purchases and holds journaled, each in one statement",
  incremental: true
})

const mailboxDepth = MetricKey.gauge("ticketoverflow_concert_mailbox_depth", {
  description: "Messages a concert entity found waiting when it last took its mailbox, by concert"
})

export const concertSeats = MetricKey.gauge("ticketoverflow_concert_seats", {
  description: "A concert's seats by state (sold, held, free), as its entity holds them, by concert"
})

const concertCapacity = MetricKey.gauge("ticketoverflow_concert_capacity", {
  description: "A concert's capacity, by concert"
})

const concertWaiting = MetricKey.gauge("ticketoverflow_concert_waiting", {
  description: "People in a concert's waiting line (after a draw or a sell-out), by concert"
})

export const draws = Metric.counter("ticketoverflow_draws", { description: "Draws run", incremental: true })

export const offers = Metric.counter("ticketoverflow_offers", {
  description: "Offers made to people in line (a held reservation each), by the draw or as seats came back",
  incremental: true
})

// Printing and seating plans.

export const printQueueDepth = MetricKey.gauge("ticketoverflow_print_queue_depth", {
  description: "Tickets queued or printing here, by band of the concert's date (today, week, later)"
})

export const printSeconds = Metric.histogram(
  "ticketoverflow_print_seconds",
  seconds,
  "Time from a ticket's print request (or its queueing at start) to PRINTED"
)

export const prints = MetricKey.counter("ticketoverflow_prints", {
  description: "Ticket prints finished, by outcome (printed, error)",
  incremental: true
})

export const seatingBehind = Metric.gauge("ticketoverflow_seating_plans_behind", {
  description: "Concerts run here whose seating plan is missing or behind the journal, at the last sweep (counted up to the sweep's look-ahead, 32 per render thread)"
})

export const seatingLag = Metric.gauge("ticketoverflow_seating_plan_lag_seconds", {
  description: "How long the most outdated seating plan has been behind the journal (0 when every plan is current)"
})

export const seatingCacheBytes = MetricKey.gauge("ticketoverflow_seating_cache_bytes", {
  description: "Seating plans kept in memory for readers, by kind (gzip: each concert's current plan, up to SEATING_CACHE_MB; plain: inflated for readers without gzip, up to a quarter of it)"
})

export const seatingRenders = Metric.counter("ticketoverflow_seating_renders", {
  description: "Seating plans rendered",
  incremental: true
})

// The database pool and the process.

export const poolConnections = MetricKey.gauge("ticketoverflow_db_pool_connections", {
  description: "Database connections by state (in_use, idle)"
})

export const poolWaiting = Metric.gauge("ticketoverflow_db_pool_waiting", {
  description: "Queries waiting for a database connection"
})

export const poolMax = Metric.gauge("ticketoverflow_db_pool_max", { description: "The pool's size (DATABASE_POOL_SIZE)" })

export const organiserConnections = Metric.gauge("ticketoverflow_organiser_db_connections", {
  description: "Connections open to organisers' own databases (not the main one)"
})

export const organiserConnectionsMax = Metric.gauge("ticketoverflow_organiser_db_connections_max", {
  description: "The most connections organisers' databases may hold (ORGANISER_DATABASES_OPEN × ORGANISER_POOL_SIZE)"
})

export const organiserDatabasesOpen = Metric.gauge("ticketoverflow_organiser_databases_open", {
  description: "Organisers' databases with a pool open here (used lately)"
})

export const memory = MetricKey.gauge("ticketoverflow_process_memory_bytes", {
  description: "The process's memory by kind (rss, heap_used, external)"
})

export const eventLoopDelay = MetricKey.gauge("ticketoverflow_event_loop_delay_seconds", {
  description: "Event-loop delay over the last second, by statistic (p50, p99, max)"
})

/** What a concert entity last published of its concert: the dashboard's cards. */
export interface ConcertFigures {
  readonly name: string
  readonly date: string
  readonly status: string
  readonly capacity: number
  readonly sold: number
  readonly held: number
  readonly free: number
  readonly waiting: number
  /** FIRST_COME or DRAW, when the sale opens and when the draw ran (ms since the epoch). */
  readonly mode: string
  readonly opensAt: number | null
  readonly drawnAt: number | null
  /** Registrations that stand (registered for the draw, offered, or waiting). */
  readonly registered: number
}

interface ConcertSeries {
  readonly sold: Metric.Metric.Gauge<number>
  readonly held: Metric.Metric.Gauge<number>
  readonly free: Metric.Metric.Gauge<number>
  readonly capacity: Metric.Metric.Gauge<number>
  readonly waiting: Metric.Metric.Gauge<number>
  readonly mailbox: Metric.Metric.Gauge<number>
}

const concertSeries = new Map<string, ConcertSeries>()
const board = new Map<string, ConcertFigures>()

const seriesOf = (concertId: string): ConcertSeries => {
  let series = concertSeries.get(concertId)
  if (series === undefined) {
    series = {
      sold: labelled(concertSeats, { concert: concertId, state: "sold" }),
      held: labelled(concertSeats, { concert: concertId, state: "held" }),
      free: labelled(concertSeats, { concert: concertId, state: "free" }),
      capacity: labelled(concertCapacity, { concert: concertId }),
      waiting: labelled(concertWaiting, { concert: concertId }),
      mailbox: labelled(mailboxDepth, { concert: concertId })
    }
    concertSeries.set(concertId, series)
  }
  return series
}

/** A concert entity's figures after a change (a no-op when nothing changed). */
export const publishConcert = (concertId: string, figures: ConcertFigures): void => {
  const last = board.get(concertId)
  board.set(concertId, figures)
  if (
    last !== undefined && last.sold === figures.sold && last.held === figures.held && last.free === figures.free &&
    last.capacity === figures.capacity && last.waiting === figures.waiting
  ) return
  const series = seriesOf(concertId)
  series.sold.unsafeUpdate(figures.sold, none)
  series.held.unsafeUpdate(figures.held, none)
  series.free.unsafeUpdate(figures.free, none)
  series.capacity.unsafeUpdate(figures.capacity, none)
  series.waiting.unsafeUpdate(figures.waiting, none)
}

/** How many messages a concert entity took from its mailbox at once. */
export const publishMailbox = (concertId: string, depth: number): void => {
  seriesOf(concertId).mailbox.unsafeUpdate(depth, none)
}

/**
 * A concert this process no longer runs (its shard went to another runner): its series read 0
 * here, so that summing a concert's series over the runners counts each seat once.
 */
export const leaveConcert = (concertId: string): void => {
  if (!board.delete(concertId)) return
  const series = seriesOf(concertId)
  for (const gauge of [series.sold, series.held, series.free, series.capacity, series.waiting, series.mailbox]) {
    gauge.unsafeUpdate(0, none)
  }
}

/** The concerts this process runs, as their entities last published them. */
export const concertBoard = (): ReadonlyMap<string, ConcertFigures> => board
