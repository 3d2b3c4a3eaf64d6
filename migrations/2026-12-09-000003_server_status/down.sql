DROP TABLE server_status;
