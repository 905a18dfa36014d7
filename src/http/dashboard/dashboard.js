// The on-sale dashboard: polls /dashboard/state once a second and draws one card per concert.
// Concert names are the organisers' text: written with textContent, never as HTML.
"use strict"
;(() => {
  const cards = new Map()
  const $ = (id) => document.getElementById(id)
  const connection = $("connection")
  const template = $("card")
  const number = new Intl.NumberFormat()
  const ms = (v) => (v === null || v === undefined ? "–" : v < 10 ? `${v.toFixed(1)} ms` : `${Math.round(v)} ms`)
  const bytes = (v) => (v >= 1 << 30 ? `${(v / (1 << 30)).toFixed(2)} GB` : `${Math.round(v / (1 << 20))} MB`)
  const text = (root, selector, value) => {
    const node = root.querySelector(selector)
    if (node.textContent !== value) node.textContent = value
  }
  const css = getComputedStyle(document.documentElement)

  const chartFor = (element) => {
    const width = Math.max(200, element.clientWidth)
    const height = Math.max(80, element.clientHeight)
    return new uPlot({
      width,
      height,
      legend: { show: false },
      cursor: { show: false },
      scales: { x: { time: false }, y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
      axes: [
        { stroke: css.getPropertyValue("--muted"), grid: { show: false }, values: (_u, ticks) => ticks.map((t) => `${t - 300}s`), size: 28 },
        { stroke: css.getPropertyValue("--muted"), grid: { stroke: css.getPropertyValue("--line"), width: 1 }, size: 44 }
      ],
      series: [{}, { label: "sales/s", stroke: css.getPropertyValue("--sold"), fill: "rgba(63,185,80,0.15)", width: 1.5, points: { show: false } }]
    }, [[], []], element)
  }

  const cardFor = (concert) => {
    let card = cards.get(concert.id)
    if (card !== undefined) return card
    const root = template.content.firstElementChild.cloneNode(true)
    root.dataset.concert = concert.id
    $("concerts").appendChild(root)
    const element = root.querySelector(".chart")
    card = { root, chart: chartFor(element) }
    new ResizeObserver(() => card.chart.setSize({ width: Math.max(200, element.clientWidth), height: Math.max(80, element.clientHeight) })).observe(element)
    cards.set(concert.id, card)
    return card
  }

  const draw = (concert) => {
    const { root, chart } = cardFor(concert)
    text(root, ".name", concert.name ?? concert.id)
    text(root, ".date", concert.date ?? "run by another process")
    const badge = root.querySelector(".status")
    badge.dataset.status = concert.status ?? ""
    text(root, ".status", (concert.status ?? "").replace("_", " "))
    const sold = concert.sold ?? 0
    text(root, ".sold", concert.sold === null ? "–" : number.format(concert.sold))
    text(root, ".n-sold", concert.sold === null ? "–" : number.format(concert.sold))
    text(root, ".capacity", concert.capacity === null ? "–" : number.format(concert.capacity))
    text(root, ".held", concert.held === null ? "–" : number.format(concert.held))
    text(root, ".free", concert.free === null ? "–" : number.format(concert.free))
    text(root, ".waiting", number.format(concert.waiting ?? 0))
    root.querySelector(".waiting-box").hidden = !concert.waiting
    if (concert.capacity) {
      root.querySelector(".bar-sold").style.width = `${(100 * sold) / concert.capacity}%`
      root.querySelector(".bar-held").style.width = `${(100 * (concert.held ?? 0)) / concert.capacity}%`
      root.querySelector(".bar").setAttribute("aria-label", `${sold} of ${concert.capacity} sold, ${concert.held ?? 0} held`)
    }
    // A draw: when it runs, or that it ran, and how many stand in it.
    const sale = root.querySelector(".sale")
    const clock = (ms) => new Date(ms).toLocaleString()
    sale.hidden = concert.mode !== "DRAW" && !concert.registered
    const saleText = concert.mode === "DRAW"
      ? concert.drawnAt !== null
        ? `Drawn ${clock(concert.drawnAt)} · ${number.format(concert.registered ?? 0)} in the draw still standing`
        : `Draw at ${concert.opensAt === null ? "–" : clock(concert.opensAt)} · ${number.format(concert.registered ?? 0)} registered`
      : `${number.format(concert.registered ?? 0)} in the waiting line`
    if (sale.textContent !== saleText) sale.textContent = saleText
    const recent = concert.sales.slice(-10)
    text(root, ".rate", (recent.reduce((a, b) => a + b, 0) / recent.length).toFixed(1))
    text(root, ".p50", ms(concert.p50))
    text(root, ".p99", ms(concert.p99))
    for (const status of ["412", "422", "503"]) {
      const chip = root.querySelector(`.r${status}`)
      const rate = concert.rates[status]
      text(chip, "b", String(rate))
      chip.dataset.hot = rate === 0 ? "" : status === "503" ? "bad" : "warn"
    }
    chart.setData([concert.sales.map((_, i) => i + 1), concert.sales])
  }

  const render = (state) => {
    const total = state.printQueue.today + state.printQueue.week + state.printQueue.later
    text(document, "#print-queue", number.format(total))
    text(document, "#print-bands", `today ${state.printQueue.today} · week ${state.printQueue.week} · later ${state.printQueue.later}`)
    text(document, "#print-time", state.printP50 === null ? "–" : `${ms(state.printP50)} / ${ms(state.printP99)}`)
    text(document, "#seating-behind", number.format(state.seatingBehind))
    text(document, "#seating-lag", state.seatingBehind > 0 ? `oldest ${state.seatingLagSeconds.toFixed(0)} s behind` : "all current")
    text(document, "#pool", `${state.pool.inUse} / ${state.pool.max}`)
    text(document, "#pool-waiting", state.pool.waiting > 0 ? `${state.pool.waiting} waiting` : "none waiting")
    text(document, "#memory", bytes(state.rssBytes))
    text(document, "#loop", ms(state.eventLoopP99Millis))
    const shown = new Set(state.concerts.map((c) => c.id))
    for (const [id, card] of cards) {
      if (!shown.has(id)) {
        card.chart.destroy()
        card.root.remove()
        cards.delete(id)
      }
    }
    state.concerts.forEach(draw)
    // Busiest first, as the service ordered them.
    state.concerts.forEach((c) => $("concerts").appendChild(cards.get(c.id).root))
    $("empty").hidden = state.concerts.length > 0
  }

  const poll = async () => {
    try {
      const response = await fetch("/dashboard/state", { cache: "no-store" })
      if (!response.ok) throw new Error(String(response.status))
      render(await response.json())
      connection.dataset.state = "live"
      connection.textContent = `live · ${new Date().toLocaleTimeString()}`
    } catch {
      connection.dataset.state = "lost"
      connection.textContent = "no answer from the service; retrying"
    } finally {
      setTimeout(poll, 1000)
    }
  }
  poll()
})()
