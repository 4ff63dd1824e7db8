-- send.lua - wrk script of bench/gateway: POST /api/sessions/{name}/messages with the X-Api-Key
-- header, spread over N sessions round-robin (each wrk thread starts at another offset); session
-- i sends a text to the phone of session i+1 (a wasim account: its virtual phone and the other
-- session's linked device receive it). Prints one "RESULT {json}" line at the end: requests,
-- seconds, latency percentiles (ms) and the HTTP statuses seen.
--
--   wrk -t2 -c64 -d20s -s send.lua http://127.0.0.1:PORT -- N PREFIX PHONE_PREFIX API_KEY
--   (session i is PREFIX .. %05d, its phone PHONE_PREFIX .. %07d)
-- SPDX-License-Identifier: GPL-3.0-or-later

local threads = {}

function setup(thread)
    thread:set("tid", #threads)
    table.insert(threads, thread)
end

local n, prefix, phone_prefix
local counter = 0
statuses = {}

function init(args)
    n = tonumber(args[1])
    prefix = args[2]
    phone_prefix = args[3]
    wrk.headers["X-Api-Key"] = args[4]
    wrk.headers["Content-Type"] = "application/json"
    counter = math.floor((tid or 0) * n / 2)
end

function request()
    local i = counter % n
    local peer = (i + 1) % n
    counter = counter + 1
    local body = string.format('{"to":"%s%07d@s.whatsapp.net","text":"bench message %d"}',
        phone_prefix, peer, counter)
    return wrk.format("POST", string.format("/api/sessions/%s%05d/messages", prefix, i), nil,
        body)
end

function response(status, headers, body)
    local k = tostring(status)
    statuses[k] = (statuses[k] or 0) + 1
end

function done(summary, latency, requests)
    local all = {}
    for _, t in ipairs(threads) do
        local s = t:get("statuses")
        for k, v in pairs(s or {}) do
            all[k] = (all[k] or 0) + v
        end
    end
    local parts = {}
    for k, v in pairs(all) do
        table.insert(parts, string.format('"%s":%d', k, v))
    end
    local e = summary.errors
    io.write(string.format('RESULT {"requests":%d,"seconds":%.3f,"p50_ms":%.3f,"p90_ms":%.3f,' ..
        '"p99_ms":%.3f,"max_ms":%.3f,"socket_errors":%d,"statuses":{%s}}\n',
        summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3,
        latency:percentile(90) / 1e3, latency:percentile(99) / 1e3, latency.max / 1e3,
        e.connect + e.read + e.write + e.timeout, table.concat(parts, ",")))
end
