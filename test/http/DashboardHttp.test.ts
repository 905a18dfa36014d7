import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as http from "node:http"
import * as os from "node:os"
import * as path from "node:path"
import { chromium } from "playwright-core"
import { freshDatabaseUrl } from "../fixtures/Database.js"
import { rawRequest, postStatus } from "../fixtures/RawHttp.js"
import { postConcert, serviceResource } from "../fixtures/Service.js"

/** Debian's Chromium (`.ci/run` installs it when missing), or `CHROMIUM_PATH`. */
const chromiumPath = (): string => {
  if (process.env.CHROMIUM_PATH) return process.env.CHROMIUM_PATH
  for (const name of ["chromium", "chromium-browser", "google-chrome"]) {
    const found = spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" }).stdout.trim()
    if (found !== "") return found
  }
  throw new Error("the dashboard's browser test needs Chromium: apt-get install chromium (.ci/run does), or set CHROMIUM_PATH")
}

const browser = Effect.acquireRelease(
  Effect.promise(() => chromium.launch({ executablePath: chromiumPath(), args: ["--no-sandbox"] })),
  (browser) => Effect.promise(() => browser.close())
)

const post = (agent: http.Agent, port: number, body: string) => postStatus(agent, port, "/api/v1/tickets", body)

it.scopedLive("/dashboard in Chromium: the sold count rises to capacity during a burst, without a reload", () =>
  Effect.gen(function*() {
    const url = yield* freshDatabaseUrl
    const service = yield* serviceResource({ DATABASE_URL: url })
    const capacity = 400
    const concertId = yield* Effect.promise(() => postConcert(service.port, capacity, "Wall screen <b>test</b>"))
    const chrome = yield* browser
    const page = yield* Effect.promise(() => chrome.newPage({ viewport: { width: 1280, height: 800 } }))
    const errors: Array<string> = []
    page.on("pageerror", (error) => errors.push(error.message))
    yield* Effect.promise(() => page.goto(`http://127.0.0.1:${service.port}/dashboard`))
    // Marks this document: a reload would lose it.
    yield* Effect.promise(() => page.evaluate("window.loaded = 1"))

    // Purchases in waves, so the page has time to see the count between waves.
    const seen: Array<number> = []
    let buying = true
    const watching = (async () => {
      while (buying) {
        const text = await page.locator(`[data-concert="${concertId}"] .sold`).textContent({ timeout: 100 }).catch(() => null)
        if (text !== null && text !== "–") seen.push(Number(text.replaceAll(/[^0-9]/g, "")))
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    })()
    const agent = new http.Agent({ keepAlive: true, maxSockets: 50 })
    const statuses: Array<number> = []
    for (let wave = 0; wave < 10; wave++) {
      statuses.push(...yield* Effect.promise(() =>
        Promise.all(Array.from({ length: 50 }, (_, i) =>
          post(agent, service.port, JSON.stringify({
            concert_id: concertId,
            user_id: `00000000-0000-0000-0000-${String(wave * 50 + i + 1).padStart(12, "0")}`
          }))))
      ))
      yield* Effect.sleep("600 millis")
    }
    agent.destroy()
    // The page shows capacity within a few polls of the last sale.
    const deadline = Date.now() + 10_000
    while (seen.at(-1) !== capacity && Date.now() < deadline) yield* Effect.sleep("100 millis")
    buying = false
    yield* Effect.promise(() => watching)
    expect(statuses.filter((s) => s === 201)).toHaveLength(capacity)

    expect(seen.at(-1)).toBe(capacity)
    // It rose while the page stayed open: values between none and all were shown, never falling.
    expect(seen.some((n) => n > 0 && n < capacity)).toBe(true)
    expect(seen.every((n, i) => i === 0 || n >= seen[i - 1]!)).toBe(true)
    expect(yield* Effect.promise(() => page.evaluate("window.loaded"))).toBe(1)
    // The organiser's text is shown as text, not markup.
    expect(yield* Effect.promise(() => page.locator(`[data-concert="${concertId}"] .name`).textContent())).toBe("Wall screen <b>test</b>")
    expect(yield* Effect.promise(() => page.locator(`[data-concert="${concertId}"] .status`).textContent())).toBe("SOLD OUT")
    expect(errors).toEqual([])

    // A screenshot in the test's own directory, which is not blank: decoded by the browser,
    // it has many colours and a good share of pixels off the background.
    const directory = fs.mkdtempSync(path.join(os.tmpdir(), "dashboard-"))
    const file = path.join(directory, "dashboard.png")
    const png = yield* Effect.promise(() => page.screenshot({ path: file, fullPage: true }))
    expect(fs.statSync(file).size).toBe(png.length)
    // (Run in the page, as text: this project's types have no DOM.)
    const { colours, offBackground } = yield* Effect.promise(() =>
      page.evaluate<{ colours: number; offBackground: number }>(`(async () => {
        const image = new Image()
        image.src = "data:image/png;base64,${png.toString("base64")}"
        await image.decode()
        const canvas = document.createElement("canvas")
        canvas.width = image.width
        canvas.height = image.height
        const context = canvas.getContext("2d")
        context.drawImage(image, 0, 0)
        const { data } = context.getImageData(0, 0, image.width, image.height)
        const counts = new Map()
        for (let i = 0; i < data.length; i += 4) {
          const colour = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2]
          counts.set(colour, (counts.get(colour) ?? 0) + 1)
        }
        const background = Math.max(...counts.values())
        return { colours: counts.size, offBackground: 1 - background / (data.length / 4) }
      })()`)
    )
    expect(colours).toBeGreaterThan(50)
    expect(offBackground).toBeGreaterThan(0.1)

    // The state the page polls is JSON with the card's numbers.
    const state = JSON.parse((yield* Effect.promise(() => rawRequest(service.port, "GET", "/dashboard/state"))).body) as {
      concerts: Array<{ id: string; sold: number; capacity: number; sales: Array<number> }>
    }
    const card = state.concerts.find((c) => c.id === concertId)!
    expect(card).toMatchObject({ sold: capacity, capacity })
    expect(card.sales).toHaveLength(300)
    expect(card.sales.reduce((a, b) => a + b, 0)).toBeGreaterThan(0)
  }), 180_000)
