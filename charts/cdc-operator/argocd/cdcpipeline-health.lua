-- Argo CD health of a CdcPipeline (cdc.cassandra-cdc.io/v1alpha1), from its standard conditions.
-- Progressing until the operator has seen the current generation; Suspended when paused;
-- Degraded on Degraded=True or on Ready=False for a reason no waiting will fix; Healthy on Ready=True.
local hs = {}
local generation = obj.metadata and obj.metadata.generation or 0
local status = obj.status
if status == nil or status.observedGeneration == nil or status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end
local conditions = {}
for _, c in ipairs(status.conditions or {}) do
  conditions[c.type] = c
end
local function current(c)
  return c ~= nil and (c.observedGeneration == nil or c.observedGeneration >= generation)
end
local function describe(c)
  if c.message ~= nil and c.message ~= "" then
    return c.reason .. ": " .. c.message
  end
  return c.reason
end
local paused = conditions["Paused"]
if (obj.spec ~= nil and obj.spec.paused == true) or (current(paused) and paused.status == "True") then
  hs.status = "Suspended"
  hs.message = "Paused: replicators are scaled to zero"
  return hs
end
local degraded = conditions["Degraded"]
if current(degraded) and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(degraded)
  return hs
end
local ready = conditions["Ready"]
if current(ready) and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready)
  return hs
end
-- Reasons that mean "waiting": replicators starting or rolling. Anything else (a missing
-- MaskingPolicy, Secret or Vault path, an invalid key) needs a human.
local waiting = { ReplicatorsNotReady = true }
if current(ready) and ready.status == "False" and not waiting[ready.reason] then
  hs.status = "Degraded"
  hs.message = describe(ready)
  return hs
end
hs.status = "Progressing"
if ready ~= nil then
  hs.message = describe(ready)
else
  hs.message = "Waiting for the Ready condition"
end
return hs
