-- Argo CD health of a MaskingPolicy (cdc.cassandra-cdc.io/v1alpha1): Healthy once the operator
-- accepted the current generation (Ready=True), Degraded when it refused it, else Progressing.
local hs = {}
local generation = obj.metadata and obj.metadata.generation or 0
local status = obj.status
if status == nil or status.observedGeneration == nil or status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end
for _, c in ipairs(status.conditions or {}) do
  if c.type == "Ready" then
    if c.status == "True" then
      hs.status = "Healthy"
    else
      hs.status = "Degraded"
    end
    hs.message = c.message or c.reason
    return hs
  end
end
hs.status = "Progressing"
hs.message = "Waiting for the Ready condition"
return hs
