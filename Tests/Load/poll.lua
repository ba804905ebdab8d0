-- wrk script: polling clients of `flipt-offline serve`.
-- A share of the requests (CONDITIONAL_SHARE, default 0.8) carries If-None-Match with the current ETag (ETAG)
-- and should get 304; the rest poll unconditionally and get the document with 200. ACCEPT_ENCODING, when set,
-- is sent as Accept-Encoding. THINK_MS, when set, makes each connection wait that many milliseconds on average
-- before each request (wrk's delay() counts whole milliseconds: a fractional mean is reached by drawing the floor or
-- the ceiling), so that the offered load is fixed by the script rather than by the server's speed. Counts every
-- status and prints a one-line summary that run.sh and compare.sh parse.

local path = os.getenv("POLL_PATH") or "/internal/v1/evaluation/snapshot/namespace/default"
local etag = os.getenv("ETAG") or ""
local share = tonumber(os.getenv("CONDITIONAL_SHARE") or "0.8")
local encoding = os.getenv("ACCEPT_ENCODING") or ""
local threads = {}

function setup(thread)
    thread:set("id", #threads + 1)
    table.insert(threads, thread)
end

function init(args)
    statuses = {}
    math.randomseed(os.time() * 1000 + id)
    local headers = { ["X-Flipt-Environment"] = "default", ["Accept"] = "application/json" }
    if encoding ~= "" then headers["Accept-Encoding"] = encoding end
    unconditional = wrk.format("GET", path, headers)
    headers["If-None-Match"] = etag
    conditional = wrk.format("GET", path, headers)
end

local think = tonumber(os.getenv("THINK_MS") or "")
if think then
    -- Defined only with THINK_MS: wrk takes its timer path for every request once a script has delay().
    local whole = math.floor(think)
    local fraction = think - whole
    function delay()
        if math.random() < fraction then return whole + 1 end
        return whole
    end
end

function request()
    if math.random() < share then return conditional end
    return unconditional
end

-- Counting statuses costs wrk a copy of every body into a Lua string (wrk collects bodies only for scripts that
-- define response()): with a 1 MB document that copy, not the server, limits the run. COUNT_STATUSES=0 leaves it
-- out; statuses= is then empty and bytes= (all bytes read) tells 200s from 304s.
if os.getenv("COUNT_STATUSES") ~= "0" then
    function response(status, headers, body)
        statuses[status] = (statuses[status] or 0) + 1
    end
end

function done(summary, latency, requests)
    local counts = {}
    for _, thread in ipairs(threads) do
        for status, count in pairs(thread:get("statuses")) do
            counts[status] = (counts[status] or 0) + count
        end
    end
    local parts = {}
    for status, count in pairs(counts) do table.insert(parts, status .. "=" .. count) end
    table.sort(parts)
    local errors = summary.errors
    local seconds = summary.duration / 1e6
    io.write(string.format(
        "LOAD requests=%d seconds=%.1f rps=%.0f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f "
            .. "connect_errors=%d read_errors=%d write_errors=%d timeouts=%d non_2xx_3xx=%d bytes=%d statuses=%s\n",
        summary.requests, seconds, summary.requests / seconds,
        latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
        latency.max / 1000, errors.connect, errors.read, errors.write, errors.timeout, errors.status,
        summary.bytes, table.concat(parts, ",")))
end
