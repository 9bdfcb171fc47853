SET LOCAL ROLE aurumai_prediction;
DROP TABLE prediction.alert_feedback;
RESET ROLE;
