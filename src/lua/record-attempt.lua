--[[
  Records one delivery attempt and the state it leaves the (event, target) delivery in, in one round trip
  (includes/record-attempt.lua).

  Input:
    KEYS[1]  event hash

    ARGV[1]  field of the target (`t:<targetId>`)
    ARGV[2]  head of the new state's JSON (`{"state":…,"attempts":[`)
    ARGV[3]  the new attempt's JSON, or '' for none
    ARGV[4]  tail of the new state's JSON (`],…,"updatedAt":…}`)
    ARGV[5]  how many attempts to keep

  Output:
    as recordAttempt
]]
--- @include "includes/record-attempt"
return recordAttempt(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
