-- Channels through which customers reach the agency (dim_channel).
SELECT channel_id, channel_name, channel_kind
FROM dim_channel
