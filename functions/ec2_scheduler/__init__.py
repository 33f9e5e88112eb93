"""ec2_scheduler: starts and stops tagged EC2 instances and RDS databases on named schedules."""
